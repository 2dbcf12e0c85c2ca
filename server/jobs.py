"""Jobs and clips in the database: create, read as their owner, and erase in one cascade.

Every read takes the owner's id: a job of another user is simply not found.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kadrio_core.models import MediaInfo, ProviderAttempt
from kadrio_core.settings import Settings

from .consent import BIOMETRIC
from .db import Row, utcnow
from .schemas import ClipOut, JobOptions, JobOut, SourceOut, WebhookOut
from .service import Service, job_prefix, new_id

log = logging.getLogger("kadrio.server")
ACTIVE = ("queued", "transcribing", "selecting", "rendering")
FINISHED = ("done", "failed")
FILE_KINDS = {"video": "mp4", "preview": "jpg", "srt": "srt", "vtt": "vtt"}


class StorageLeftovers(RuntimeError):
    """Objects are still under a job's prefix after deleting it (the cascade runs again)."""


def settings_for(base: Settings, options: JobOptions) -> Settings:
    """Settings with a job's own options applied over the service's."""
    update = options.model_dump(
        include={"max_clips", "min_seconds", "max_seconds", "language", "caption_style"},
        exclude_none=True,
    )
    return base.model_copy(update=update)


def source_suffix(filename: str) -> str:
    """A safe extension for the stored source, or none: the media was probed, not named."""
    suffix = Path(filename).suffix.lower()
    return suffix if 2 <= len(suffix) <= 6 and suffix[1:].isalnum() else ""


def create_job(
    service: Service,
    user: Row,
    upload_path: Path,
    filename: str,
    media: MediaInfo,
    options: JobOptions,
) -> Row:
    """Store the upload and record the job with its consent; nothing is left if either fails."""
    job_id = new_id()
    key = job_prefix(user["id"], job_id) + "source" + source_suffix(filename)
    size = upload_path.stat().st_size
    service.storage.put(key, upload_path)
    now = utcnow()
    media_json = media.model_dump(mode="json", exclude={"path"})
    try:
        with service.db.transaction() as tx:
            tx.execute(
                "INSERT INTO jobs (id, user_id, status, progress, source_name, source_key, "
                "source_size, media, options, webhook_url, created_at, updated_at, heartbeat_at) "
                "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    user["id"],
                    filename[:255] or "upload",
                    key,
                    size,
                    json.dumps(media_json),
                    options.model_dump_json(exclude_none=True),
                    options.webhook_url,
                    now,
                    now,
                    now,
                ),
            )
            tx.execute(
                "INSERT INTO consents (id, user_id, job_id, kind, version, given_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (new_id(), user["id"], job_id, BIOMETRIC.kind, BIOMETRIC.version, now),
            )
    except BaseException:
        service.storage.delete(job_prefix(user["id"], job_id))
        raise
    job = service.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    assert job is not None
    return job


def owned_job(service: Service, user_id: str, job_id: str) -> Row | None:
    return service.db.one(
        "SELECT * FROM jobs WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
        (job_id, user_id),
    )


def list_jobs(service: Service, user_id: str, limit: int, before: str | None) -> list[Row]:
    """The user's jobs, newest first; ``before`` is the id of the last job of the previous page."""
    if before is None:
        return service.db.all(
            "SELECT * FROM jobs WHERE user_id = ? AND deleted_at IS NULL "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (user_id, limit),
        )
    anchor = owned_job(service, user_id, before)
    if anchor is None:
        return []
    return service.db.all(
        "SELECT * FROM jobs WHERE user_id = ? AND deleted_at IS NULL "
        "AND (created_at < ? OR (created_at = ? AND id < ?)) "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        (user_id, anchor["created_at"], anchor["created_at"], before, limit),
    )


def job_clips(service: Service, job_id: str) -> list[Row]:
    return service.db.all("SELECT * FROM clips WHERE job_id = ? ORDER BY idx", (job_id,))


def owned_clip(service: Service, user_id: str, job_id: str, clip_id: str) -> Row | None:
    return service.db.one(
        "SELECT c.* FROM clips c JOIN jobs j ON j.id = c.job_id "
        "WHERE c.id = ? AND c.job_id = ? AND c.user_id = ? AND j.deleted_at IS NULL",
        (clip_id, job_id, user_id),
    )


def job_out(job: Row, clips_url: str, clips: list[Row] | None = None) -> JobOut:
    """The API view of a job; with its clips, render providers and attempts are included."""
    media = json.loads(job["media"])
    providers: dict[str, str] = json.loads(job["providers"])
    attempts = [ProviderAttempt.model_validate(a) for a in json.loads(job["attempts"])]
    for clip in clips or []:
        attempts += [ProviderAttempt.model_validate(a) for a in json.loads(clip["attempts"])]
        if clip["renderer"]:
            providers.setdefault("renderer", clip["renderer"])
    webhook = (
        WebhookOut(url=job["webhook_url"], status=job["webhook_status"])
        if job["webhook_url"]
        else None
    )
    return JobOut(
        id=job["id"],
        status=job["status"],
        progress=job["progress"],
        error=job["error"],
        message=job["message"],
        source=SourceOut(
            name=job["source_name"],
            size=job["source_size"],
            duration=media["duration"],
            width=media["width"],
            height=media["height"],
            has_video=media["has_video"],
            has_audio=media["has_audio"],
        ),
        options=JobOptions.model_validate_json(job["options"]),
        clip_count=job["clip_count"],
        providers=providers,
        attempts=attempts,
        webhook=webhook,
        created_at=job["created_at"],
        updated_at=job["updated_at"],
        started_at=job["started_at"],
        finished_at=job["finished_at"],
        clips_url=clips_url,
    )


def clip_out(clip: Row, url_for: Callable[[str], str | None]) -> ClipOut:
    """The API view of a clip; ``url_for(kind)`` gives the URL of one of its files."""
    moment: dict[str, Any] = json.loads(clip["moment"])
    done = clip["status"] == "done"
    return ClipOut(
        id=clip["id"],
        index=clip["idx"],
        status=clip["status"],
        title=clip["title"],
        hook=moment.get("hook", ""),
        reason=moment.get("reason", ""),
        hashtags=moment.get("hashtags", []),
        score=clip["score"],
        start=clip["start_time"],
        end=clip["end_time"],
        duration=round(clip["end_time"] - clip["start_time"], 3),
        width=clip["width"],
        height=clip["height"],
        size=clip["size"],
        renderer=clip["renderer"],
        url=url_for("video") if done else None,
        preview_url=url_for("preview") if done else None,
        srt_url=url_for("srt") if done else None,
        vtt_url=url_for("vtt") if done else None,
    )


def clip_file_key(clip: Row, kind: str) -> str | None:
    if clip["status"] != "done" or not clip["files"] or kind not in FILE_KINDS:
        return None
    return json.loads(clip["files"]).get(FILE_KINDS[kind])


# -- deletion -------------------------------------------------------------------------------


def mark_deleted(service: Service, user_id: str, job_id: str) -> bool:
    """Hide the job from its owner at once; the cascade then erases it. False if not theirs."""
    now = utcnow()
    return bool(
        service.db.execute(
            "UPDATE jobs SET deleted_at = ?, updated_at = ? "
            "WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
            (now, now, job_id, user_id),
        )
    )


def erase_job(service: Service, job_id: str) -> None:
    """Delete every object under the job's prefix, then its rows. Safe to run again and again:
    until the storage is empty the rows stay, so a failed run is found and retried."""
    job = service.db.one("SELECT id, user_id FROM jobs WHERE id = ?", (job_id,))
    if job is None:
        return
    prefix = job_prefix(job["user_id"], job_id)
    service.storage.delete(prefix)
    left = list(service.storage.list(prefix))
    if left:
        raise StorageLeftovers(f"{len(left)} object(s) still under {prefix}")
    service.drop_work_dir(job_id)
    with service.db.transaction() as tx:
        tx.execute("DELETE FROM clips WHERE job_id = ?", (job_id,))
        # the consent record (who agreed to which text, when) outlives the job it was given for
        tx.execute("UPDATE consents SET job_id = NULL WHERE job_id = ?", (job_id,))
        tx.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    log.info("job %s erased", job_id)


def deleted_jobs(service: Service, older_than: datetime) -> list[str]:
    rows = service.db.all(
        "SELECT id FROM jobs WHERE deleted_at IS NOT NULL AND deleted_at < ?", (older_than,)
    )
    return [r["id"] for r in rows]
