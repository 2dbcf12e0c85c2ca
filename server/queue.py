"""The job queue: a huey instance from settings and the tasks workers run.

``KADRIO_QUEUE_URL``: unset -> SqliteHuey in ``<data dir>/queue.db``; ``redis://...`` ->
RedisHuey (many workers on many machines); ``sqlite:///path``; ``immediate://`` runs every task
inside the caller at once (tests, debugging). Tasks get ids only, never provider objects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kadrio_core.errors import BadInput
from kadrio_core.settings import Settings

if TYPE_CHECKING:
    import huey

    from .service import Service

log = logging.getLogger("kadrio.worker")


def queue_url(settings: Settings) -> str:
    return settings.queue_url or f"sqlite:///{settings.data_dir / 'queue.db'}"


def make_huey(settings: Settings) -> huey.Huey:
    from huey import MemoryHuey, RedisHuey, SqliteHuey

    url = queue_url(settings)
    name = settings.service.queue_name
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, results=False)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False)
    if url == "immediate://":
        return MemoryHuey(name, immediate=True, results=False)
    raise BadInput(
        f"unsupported queue URL {url!r}: use redis://..., sqlite:///path or immediate://"
    )


class Queue:
    """Enqueue methods for the app and the stages; the same object registers the tasks."""

    def __init__(self, service: Service) -> None:
        from . import notify, stages

        self.service = service
        self.huey = make_huey(service.settings)
        opts = service.settings.service
        task = self.huey.task

        @task(name="kadrio.transcribe")
        def transcribe(job_id: str) -> None:
            stages.transcribe(service, job_id)

        @task(name="kadrio.select")
        def select(job_id: str) -> None:
            stages.select(service, job_id)

        @task(name="kadrio.render")
        def render(clip_id: str) -> None:
            stages.render(service, clip_id)

        @task(name="kadrio.email", retries=5, retry_delay=30, retry_backoff=2)
        def email(job_id: str) -> None:
            notify.send_email(service, job_id)

        @task(
            name="kadrio.webhook",
            retries=opts.webhook_retries,
            retry_delay=opts.webhook_retry_delay,
            retry_backoff=2,
            context=True,
        )
        def webhook(job_id: str, task: Any = None) -> None:
            notify.deliver_webhook(service, job_id, task.retries if task is not None else 0)

        @task(name="kadrio.erase", retries=8, retry_delay=5, retry_backoff=2)
        def erase(job_id: str) -> None:
            from .jobs import erase_job

            erase_job(service, job_id)

        from .retention import register_periodic

        self.purge = register_periodic(self.huey, service)  # hourly retention purge
        self._tasks = {
            "transcribe": transcribe,
            "select": select,
            "render": render,
            "email": email,
            "webhook": webhook,
            "erase": erase,
        }

    def _enqueue(self, name: str, row_id: str) -> None:
        self._tasks[name](row_id)

    def transcribe(self, job_id: str) -> None:
        self._enqueue("transcribe", job_id)

    def select(self, job_id: str) -> None:
        self._enqueue("select", job_id)

    def render(self, clip_id: str) -> None:
        self._enqueue("render", clip_id)

    def erase(self, job_id: str) -> None:
        self._enqueue("erase", job_id)

    def email(self, job_id: str) -> None:
        self._enqueue("email", job_id)

    def finished(self, job_id: str) -> None:
        """A job reached done or failed: tell its owner."""
        self._enqueue("email", job_id)
        self._enqueue("webhook", job_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def consumer(self, threads: int) -> Any:
        return self.huey.create_consumer(
            workers=threads, worker_type="thread", periodic=True, scheduler_interval=1
        )
