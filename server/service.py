"""What the web app and the workers share: settings, the database, storage and the queue."""

from __future__ import annotations

import functools
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from kadrio_core.plugins import registry
from kadrio_core.providers import Storage
from kadrio_core.settings import Settings

from .db import Database

if TYPE_CHECKING:
    from .queue import Queue


def new_id() -> str:
    return uuid.uuid4().hex


def job_prefix(user_id: str, job_id: str) -> str:
    """Every object of a job lives under this storage prefix; deleting it erases them all."""
    return f"users/{user_id}/jobs/{job_id}/"


def transcript_key(user_id: str, job_id: str) -> str:
    return job_prefix(user_id, job_id) + "transcript.json"


def moments_key(user_id: str, job_id: str) -> str:
    return job_prefix(user_id, job_id) + "moments.json"


def clip_key(user_id: str, job_id: str, index: int, ext: str) -> str:
    return job_prefix(user_id, job_id) + f"clips/clip-{index:02d}.{ext}"


class Service:
    """One per process; thread-safe. Workers and the app build it from the same settings."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database.from_settings(settings)

    @functools.cached_property
    def storage(self) -> Storage:
        provider = registry("storage").create(self.settings.storage, self.settings)
        assert isinstance(provider, Storage)
        return provider

    @functools.cached_property
    def queue(self) -> Queue:
        from .queue import Queue

        return Queue(self)

    @property
    def lease(self) -> float:
        return self.settings.service.lease_seconds

    def work_dir(self, job_id: str) -> Path:
        """This machine's scratch folder for a job (source copy, renders); removed when done."""
        return self.settings.data_dir / "work" / job_id

    def drop_work_dir(self, job_id: str) -> None:
        shutil.rmtree(self.work_dir(job_id), ignore_errors=True)

    def tmp_dir(self) -> Path:
        folder = self.settings.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def close(self) -> None:
        self.db.close()
