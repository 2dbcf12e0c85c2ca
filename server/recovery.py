"""Finding work that a dead worker (or a lost queue message) left behind, and queueing it again.

Every worker process runs :func:`sweep` every ``lease / 3`` seconds. A stage whose heartbeat is
older than the lease is queued again (at most once per lease, via ``requeued_at``; work nobody
claimed yet only when the queue is empty); the stage's own claim makes duplicates harmless.
Deleted jobs are erased again until nothing is left, and scratch folders of jobs that are no
longer running on this machine are removed.
"""

from __future__ import annotations

import logging
import shutil
import threading
from datetime import timedelta

from .db import utcnow
from .jobs import ACTIVE, deleted_jobs, erase_job
from .service import Service
from .stages import finish
from .uploads import remove_stale_uploads

log = logging.getLogger("kadrio.worker")


def sweep(service: Service) -> dict[str, int]:
    """One pass; returns how many of each thing were queued or done (for logs and tests)."""
    db, queue = service.db, service.queue
    now = utcnow()
    stale = now - timedelta(seconds=service.lease)
    counts = {"transcribe": 0, "select": 0, "render": 0, "finish": 0, "email": 0, "erase": 0}

    def requeue_jobs(statuses: tuple[str, ...]) -> list[str]:
        marks = ", ".join("?" for _ in statuses)
        rows = db.all(
            f"SELECT id FROM jobs WHERE status IN ({marks}) AND deleted_at IS NULL "
            "AND heartbeat_at < ? AND (requeued_at IS NULL OR requeued_at < ?)",
            (*statuses, stale, stale),
        )
        ids = []
        for row in rows:
            if db.execute(
                "UPDATE jobs SET requeued_at = ? WHERE id = ? AND "
                "(requeued_at IS NULL OR requeued_at < ?)",
                (now, row["id"], stale),
            ):
                ids.append(row["id"])
        return ids

    # A message still waiting in a busy queue looks just like a lost one: jobs and clips that no
    # worker has claimed yet are queued again only once the queue has drained. Claimed work whose
    # worker went silent is queued again at once.
    idle = queue.pending() == 0
    unclaimed = ("queued", "transcribing") if idle else ("transcribing",)
    for job_id in requeue_jobs(unclaimed):
        queue.transcribe(job_id)
        counts["transcribe"] += 1
    for job_id in requeue_jobs(("selecting",)):
        queue.select(job_id)
        counts["select"] += 1

    clip_states = ("'pending'", "'rendering'") if idle else ("'rendering'",)
    clips = db.all(
        "SELECT c.id FROM clips c JOIN jobs j ON j.id = c.job_id "
        f"WHERE c.status IN ({', '.join(clip_states)}) AND c.heartbeat_at < ? "
        "AND (c.requeued_at IS NULL OR c.requeued_at < ?) "
        "AND j.status = 'rendering' AND j.deleted_at IS NULL",
        (stale, stale),
    )
    for clip in clips:
        if db.execute(
            "UPDATE clips SET requeued_at = ? WHERE id = ? AND "
            "(requeued_at IS NULL OR requeued_at < ?)",
            (now, clip["id"], stale),
        ):
            queue.render(clip["id"])
            counts["render"] += 1

    # every clip done but the job never flipped (the finishing worker died in between)
    for row in db.all(
        "SELECT id FROM jobs WHERE status = 'rendering' AND deleted_at IS NULL "
        "AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM clips WHERE clips.job_id = jobs.id "
        "AND clips.status <> 'done')",
        (stale,),
    ):
        counts["finish"] += finish(service, row["id"])

    for row in db.all(
        "SELECT id FROM jobs WHERE status IN ('done', 'failed') AND notified_at IS NULL "
        "AND deleted_at IS NULL AND finished_at < ?",
        (stale,),
    ):
        queue.email(row["id"])
        counts["email"] += 1

    for job_id in deleted_jobs(service, now):
        try:
            erase_job(service, job_id)
            counts["erase"] += 1
        except Exception as exc:
            log.warning("erasing job %s failed again (%s); will retry", job_id, exc)

    _drop_idle_work_dirs(service)
    remove_stale_uploads(service.tmp_dir())
    return counts


def _drop_idle_work_dirs(service: Service) -> None:
    root = service.settings.data_dir / "work"
    if not root.is_dir():
        return
    names = [p.name for p in root.iterdir() if p.is_dir()]
    if not names:
        return
    marks = ", ".join("?" for _ in ACTIVE)
    for name in names:
        row = service.db.one(
            f"SELECT status FROM jobs WHERE id = ? AND deleted_at IS NULL AND status IN ({marks})",
            (name, *ACTIVE),
        )
        if row is None:
            shutil.rmtree(root / name, ignore_errors=True)


class Sweeper:
    """Runs :func:`sweep` in a daemon thread of a worker process."""

    def __init__(self, service: Service, interval: float | None = None) -> None:
        self.service = service
        self.interval = interval or max(1.0, service.lease / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kadrio-sweeper", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                counts = sweep(self.service)
                if any(counts.values()):
                    log.info("recovery: %s", {k: v for k, v in counts.items() if v})
            except Exception:
                log.exception("recovery sweep failed")
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
