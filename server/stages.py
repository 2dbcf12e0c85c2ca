"""What workers do for a job, one function per stage, run by the queue's tasks.

Each stage first *claims* its row with a conditional UPDATE (only one worker wins), keeps a
heartbeat while it works, and checkpoints its result before moving the job on:

- transcribe: ``transcript.json`` in storage; a rerun finds it and does not transcribe again;
- select: one clip row per moment, inserted with the move to ``rendering`` in one transaction
  (``UNIQUE (job_id, idx)``): a rerun can never add clips twice;
- render (one task per clip, any worker): fixed storage keys per clip index, the row marked done;
  a rerun overwrites the same keys;
- finish: the worker whose UPDATE flips the job to ``done`` sends the email and the webhook.

A worker that dies leaves a stale heartbeat; :mod:`kadrio_server.recovery` queues the stage again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from kadrio_core.errors import KadrioError
from kadrio_core.media import fingerprint, probe
from kadrio_core.models import MediaInfo, Moment, SelectionRequest, Transcript
from kadrio_core.pipeline import MOMENTS, Pipeline, write_json
from kadrio_core.providers import Progress
from kadrio_core.settings import Settings

from .db import Database, Row, utcnow
from .jobs import settings_for
from .schemas import JobOptions
from .service import Service, clip_key, job_prefix, moments_key, new_id, transcript_key

log = logging.getLogger("kadrio.worker")

# job progress (0-100) at the start of each stage
PROGRESS = {"extract_audio": (0, 5), "transcribe": (5, 40), "select": (40, 50)}
RENDER_FROM = 50


class JobGone(Exception):
    """The job was deleted (or finished elsewhere) while this stage worked on it."""


def job_settings(base: Settings, job: Row) -> Settings:
    """The worker's settings with the job's own options (validated when it was created)."""
    return settings_for(base, JobOptions.model_validate_json(job["options"]))


def selection_request(settings: Settings, job: Row) -> SelectionRequest:
    options = JobOptions.model_validate_json(job["options"])
    return settings.selection_request(prompt=options.prompt)


# -- liveness -------------------------------------------------------------------------------


class Heartbeat:
    """Touches ``heartbeat_at`` of one row every ``lease / 4`` seconds while a stage runs."""

    def __init__(self, db: Database, table: str, row_id: str, lease: float) -> None:
        assert table in ("jobs", "clips")
        self.db, self.table, self.row_id = db, table, row_id
        self.interval = max(0.2, lease / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{row_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.db.execute(
                    f"UPDATE {self.table} SET heartbeat_at = ? WHERE id = ?",
                    (utcnow(), self.row_id),
                )
            except Exception:  # a missed beat only risks a duplicate run, never a wrong result
                log.warning("heartbeat of %s %s failed", self.table, self.row_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class JobReporter:
    """The pipeline's Reporter for a job: stage progress becomes the job's 0-100 progress."""

    def __init__(self, db: Database, job_id: str) -> None:
        self.db, self.job_id = db, job_id
        self._last = 0.0

    @contextlib.contextmanager
    def stage(self, name: str, label: str) -> Iterator[Progress]:
        low, high = PROGRESS.get(name, (None, None))
        if low is None or high is None:
            yield lambda _: None
            return

        def progress(fraction: float) -> None:
            now = time.monotonic()
            if now - self._last < 1.0 and fraction < 1.0:
                return
            self._last = now
            set_progress(self.db, self.job_id, round(low + (high - low) * min(1.0, fraction)))

        progress(0.0)
        yield progress

    def info(self, text: str) -> None:
        log.info("job %s: %s", self.job_id, text)


def set_progress(db: Database, job_id: str, value: int) -> None:
    """Progress only goes up, whatever order concurrent workers report in."""
    db.execute(
        "UPDATE jobs SET progress = CASE WHEN progress < ? THEN ? ELSE progress END, "
        "updated_at = ? WHERE id = ? AND status NOT IN ('done', 'failed')",
        (value, value, utcnow(), job_id),
    )


def job_alive(db: Database, job_id: str) -> bool:
    row = db.one("SELECT deleted_at FROM jobs WHERE id = ?", (job_id,))
    return row is not None and row["deleted_at"] is None


# -- failure --------------------------------------------------------------------------------


def reason_for(stage: str, exc: BaseException) -> str:
    """A reason a person can read; internal errors keep their details in the log only."""
    if isinstance(exc, KadrioError):
        return f"{stage} failed: {exc}"
    return f"{stage} failed: internal error ({type(exc).__name__}); the worker log has details"


def fail_job(service: Service, job_id: str, reason: str) -> None:
    now = utcnow()
    changed = service.db.execute(
        "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, updated_at = ? "
        "WHERE id = ? AND status NOT IN ('done', 'failed') AND deleted_at IS NULL",
        (reason[:2000], now, now, job_id),
    )
    if changed:
        log.warning("job %s failed: %s", job_id, reason)
        service.drop_work_dir(job_id)
        service.queue.finished(job_id)


@contextlib.contextmanager
def failing_job(service: Service, job_id: str, stage: str) -> Iterator[None]:
    """Any error inside marks the job failed with a readable reason (JobGone: just stop)."""
    try:
        yield
    except JobGone:
        log.info("job %s: gone during %s; stopping", job_id, stage)
        raise
    except Exception as exc:
        if not isinstance(exc, KadrioError):
            log.exception("job %s: %s crashed", job_id, stage)
        fail_job(service, job_id, reason_for(stage, exc))
        raise JobGone from exc


# -- shared inputs --------------------------------------------------------------------------


def local_source(service: Service, job: Row) -> Path:
    """The job's source on this machine, fetched from storage once per machine."""
    work = service.work_dir(job["id"])
    work.mkdir(parents=True, exist_ok=True)
    dest = work / ("source" + Path(job["source_key"]).suffix)
    if dest.is_file() and dest.stat().st_size == job["source_size"]:
        return dest
    tmp = work / f".source-{new_id()}.part"
    try:
        service.storage.get(job["source_key"], tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def stored_transcript(service: Service, job: Row, source: Path | None = None) -> Transcript | None:
    """The checkpointed transcript (cached on this machine), if any and made from this source."""
    work = service.work_dir(job["id"])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "transcript.json"
    if not path.is_file():
        tmp = work / f".transcript-{new_id()}.part"
        try:
            service.storage.get(transcript_key(job["user_id"], job["id"]), tmp)
        except FileNotFoundError:
            return None
        os.replace(tmp, path)
    try:
        transcript = Transcript.model_validate_json(path.read_bytes())
    except ValidationError:
        path.unlink(missing_ok=True)
        return None
    made_from = transcript.source.fingerprint if transcript.source else None
    if source is not None and made_from != fingerprint(source).fingerprint:
        return None
    return transcript


def record_attempts(service: Service, job_id: str, pipeline: Pipeline) -> None:
    """Merge the providers used and every attempt (fallbacks included) into the job row."""
    if not pipeline.attempts and not pipeline.used:
        return
    with service.db.transaction() as tx:
        row = tx.one("SELECT providers, attempts FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return
        providers = json.loads(row["providers"]) | pipeline.used
        attempts = json.loads(row["attempts"]) + [
            a.model_dump(mode="json") for a in pipeline.attempts
        ]
        tx.execute(
            "UPDATE jobs SET providers = ?, attempts = ? WHERE id = ?",
            (json.dumps(providers), json.dumps(attempts), job_id),
        )
    pipeline.attempts.clear()


# -- stages ---------------------------------------------------------------------------------


def transcribe(service: Service, job_id: str) -> None:
    """queued -> transcribing -> selecting (then runs the selection in the same task)."""
    now = utcnow()
    claimed = service.db.execute(
        "UPDATE jobs SET status = 'transcribing', heartbeat_at = ?, updated_at = ?, "
        "started_at = COALESCE(started_at, ?) WHERE id = ? AND deleted_at IS NULL "
        "AND (status = 'queued' OR (status = 'transcribing' AND heartbeat_at < ?))",
        (now, now, now, job_id, now - timedelta(seconds=service.lease)),
    )
    if not claimed:
        return
    job = _job(service, job_id)
    with contextlib.suppress(JobGone), failing_job(service, job_id, "transcription"):
        settings = job_settings(service.settings, job)
        pipeline = Pipeline(settings, JobReporter(service.db, job_id))
        with Heartbeat(service.db, "jobs", job_id, service.lease):
            source = local_source(service, job)
            media = probe(source)
            if stored_transcript(service, job, source) is not None:
                log.info("job %s: transcript found in storage; not transcribing again", job_id)
            else:
                pipeline.check_providers()
                transcript = pipeline.transcribe(source, media)
                path = service.work_dir(job_id) / "transcript.json"
                write_json(path, transcript.model_dump(mode="json"))
                service.storage.put(transcript_key(job["user_id"], job_id), path)
                record_attempts(service, job_id, pipeline)
            _ensure_alive(service, job)
        moved = service.db.execute(
            "UPDATE jobs SET status = 'selecting', progress = ?, heartbeat_at = ?, "
            "updated_at = ? WHERE id = ? AND status = 'transcribing' AND deleted_at IS NULL",
            (PROGRESS["select"][0], utcnow(), utcnow(), job_id),
        )
        if moved:
            _select(service, job_id)


def select(service: Service, job_id: str) -> None:
    """Resume a selection whose worker went silent (queued by recovery)."""
    now = utcnow()
    claimed = service.db.execute(
        "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'selecting' "
        "AND deleted_at IS NULL AND heartbeat_at < ?",
        (now, job_id, now - timedelta(seconds=service.lease)),
    )
    if claimed:
        with contextlib.suppress(JobGone):
            _select(service, job_id)


def _select(service: Service, job_id: str) -> None:
    """selecting -> rendering, with one clip row per moment (or done when there are none)."""
    job = _job(service, job_id)
    with failing_job(service, job_id, "moment selection"):
        settings = job_settings(service.settings, job)
        pipeline = Pipeline(settings, JobReporter(service.db, job_id))
        with Heartbeat(service.db, "jobs", job_id, service.lease):
            transcript = stored_transcript(service, job)
            if transcript is None:
                raise KadrioError("the transcript is missing from storage")
            request = selection_request(settings, job)
            moments = pipeline.select(transcript, request) if transcript.words else []
            path = service.work_dir(job_id) / "moments.json"
            write_json(path, MOMENTS.dump_python(moments, mode="json"))
            service.storage.put(moments_key(job["user_id"], job_id), path)
            record_attempts(service, job_id, pipeline)
            _ensure_alive(service, job)
        if not moments:
            message = (
                "no speech found; no clips made"
                if not transcript.words
                else f"no moment of {request.min_seconds:g}-{request.max_seconds:g} s on "
                "sentence boundaries found; no clips made"
            )
            _finish_empty(service, job_id, message)
            return
        clip_ids = _insert_clips(service, job, moments)
    for clip_id in clip_ids:
        service.queue.render(clip_id)


def _insert_clips(service: Service, job: Row, moments: list[Moment]) -> list[str]:
    now = utcnow()
    with service.db.transaction() as tx:
        moved = tx.execute(
            "UPDATE jobs SET status = 'rendering', progress = ?, clip_count = ?, "
            "heartbeat_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'selecting' AND deleted_at IS NULL",
            (RENDER_FROM, len(moments), now, now, job["id"]),
        )
        if not moved:
            raise JobGone
        for index, moment in enumerate(moments, 1):
            tx.execute(
                "INSERT INTO clips (id, job_id, user_id, idx, status, moment, title, score, "
                "start_time, end_time, created_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_id(),
                    job["id"],
                    job["user_id"],
                    index,
                    moment.model_dump_json(),
                    moment.title,
                    moment.score,
                    moment.start,
                    moment.end,
                    now,
                    now,
                ),
            )
        rows = tx.all("SELECT id FROM clips WHERE job_id = ? ORDER BY idx", (job["id"],))
    return [r["id"] for r in rows]


def _finish_empty(service: Service, job_id: str, message: str) -> None:
    now = utcnow()
    changed = service.db.execute(
        "UPDATE jobs SET status = 'done', progress = 100, clip_count = 0, message = ?, "
        "finished_at = ?, updated_at = ? "
        "WHERE id = ? AND status = 'selecting' AND deleted_at IS NULL",
        (message, now, now, job_id),
    )
    if changed:
        service.drop_work_dir(job_id)
        service.queue.finished(job_id)


def render(service: Service, clip_id: str) -> None:
    """Render one clip; any worker may take any clip of any job."""
    now = utcnow()
    claimed = service.db.execute(
        "UPDATE clips SET status = 'rendering', heartbeat_at = ?, runs = runs + 1 "
        "WHERE id = ? AND (status = 'pending' OR (status = 'rendering' AND heartbeat_at < ?)) "
        "AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = clips.job_id "
        "AND jobs.status = 'rendering' AND jobs.deleted_at IS NULL)",
        (now, clip_id, now - timedelta(seconds=service.lease)),
    )
    if not claimed:
        return
    clip = service.db.one("SELECT * FROM clips WHERE id = ?", (clip_id,))
    assert clip is not None
    job = _job(service, clip["job_id"])
    job_id, index = job["id"], clip["idx"]
    with contextlib.suppress(JobGone), failing_job(service, job_id, f"rendering clip {index}"):
        settings = job_settings(service.settings, job)
        pipeline = Pipeline(settings, JobReporter(service.db, job_id))
        out_dir = service.work_dir(job_id) / f"render-{clip_id}-{clip['runs']}"
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            with Heartbeat(service.db, "clips", clip_id, service.lease):
                source = local_source(service, job)
                media = _media(source)
                transcript = stored_transcript(service, job)
                if transcript is None:
                    raise KadrioError("the transcript is missing from storage")
                moment = Moment.model_validate_json(clip["moment"])
                plan = pipeline.plan(index, moment, media, transcript.words, out_dir)
                rendered = pipeline.render(source, plan)
                files = {}
                for ext in ("mp4", "srt", "vtt", "jpg"):
                    key = clip_key(job["user_id"], job_id, index, ext)
                    service.storage.put(key, getattr(rendered, ext))
                    files[ext] = key
                _ensure_alive(service, job)
            attempts = [a.model_dump(mode="json") for a in pipeline.attempts]
            service.db.execute(
                "UPDATE clips SET status = 'done', files = ?, width = ?, height = ?, size = ?, "
                "renderer = ?, attempts = ?, finished_at = ? WHERE id = ? AND status = 'rendering'",
                (
                    json.dumps(files),
                    rendered.width,
                    rendered.height,
                    rendered.mp4.stat().st_size,
                    rendered.renderer,
                    json.dumps(attempts),
                    utcnow(),
                    clip_id,
                ),
            )
        finally:
            _rmtree(out_dir)
    _after_render(service, job_id)


def _after_render(service: Service, job_id: str) -> None:
    counts = service.db.one(
        "SELECT COUNT(*) AS total, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done "
        "FROM clips WHERE job_id = ?",
        (job_id,),
    )
    if not counts or not counts["total"]:
        return
    done = int(counts["done"] or 0)
    set_progress(service.db, job_id, RENDER_FROM + (100 - RENDER_FROM) * done // counts["total"])
    if done == counts["total"]:
        finish(service, job_id)


def finish(service: Service, job_id: str) -> bool:
    """rendering -> done once every clip is done; True for the one caller that flipped it."""
    now = utcnow()
    changed = service.db.execute(
        "UPDATE jobs SET status = 'done', progress = 100, finished_at = ?, updated_at = ? "
        "WHERE id = ? AND status = 'rendering' AND deleted_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM clips WHERE clips.job_id = jobs.id AND clips.status <> 'done')",
        (now, now, job_id),
    )
    if changed:
        log.info("job %s done", job_id)
        service.drop_work_dir(job_id)
        service.queue.finished(job_id)
    return bool(changed)


# -- helpers --------------------------------------------------------------------------------


def _job(service: Service, job_id: str) -> Row:
    job = service.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if job is None:
        raise JobGone
    return job


def _ensure_alive(service: Service, job: Row) -> None:
    """After writing to storage: if the job was deleted meanwhile, erase what was written."""
    if not job_alive(service.db, job["id"]):
        service.storage.delete(job_prefix(job["user_id"], job["id"]))
        raise JobGone


_probe_lock = threading.Lock()
_probed: dict[tuple[str, int, float], MediaInfo] = {}


def _media(source: Path) -> MediaInfo:
    """probe() once per source file per process: every clip of a job renders from it."""
    stat = source.stat()
    key = (str(source), stat.st_size, stat.st_mtime)
    with _probe_lock:
        if key not in _probed:
            if len(_probed) > 64:
                _probed.clear()
            _probed[key] = probe(source)
        return _probed[key]


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
