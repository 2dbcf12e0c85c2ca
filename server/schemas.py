"""Pydantic models at the API boundary: what clients send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kadrio_core.models import ProviderAttempt

JobStatus = Literal["queued", "transcribing", "selecting", "rendering", "done", "failed"]
ClipStatus = Literal["pending", "rendering", "done"]
PLANS = ("free", "starter", "pro", "business")
LANGUAGES = ("en", "ru")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobOptions(Model):
    """The ``options`` form field of ``POST /jobs`` (JSON); anything unset uses the defaults."""

    max_clips: int | None = Field(default=None, ge=1, le=100)
    min_seconds: float | None = Field(default=None, gt=0, le=600)
    max_seconds: float | None = Field(default=None, gt=0, le=600)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")
    caption_style: str | None = Field(default=None, max_length=40)
    prompt: str | None = Field(default=None, max_length=500)
    webhook_url: str | None = Field(default=None, max_length=2000)

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return value


class Created(Model):
    id: str
    status: JobStatus


class SourceOut(Model):
    name: str
    size: int
    duration: float
    width: int
    height: int
    has_video: bool
    has_audio: bool


class WebhookOut(Model):
    url: str
    status: str | None = Field(description="delivered, retrying: ..., failed: ... or null")


class JobOut(Model):
    id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    error: str | None = Field(description="why the job failed, for people")
    message: str | None = Field(description="a note on a finished job, e.g. no speech found")
    source: SourceOut
    options: JobOptions
    clip_count: int | None
    providers: dict[str, str] = Field(description="stage -> provider that did the work")
    attempts: list[ProviderAttempt] = Field(description="every provider tried, fallbacks too")
    webhook: WebhookOut | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    clips_url: str


class JobList(Model):
    jobs: list[JobOut]
    next: str | None = Field(description="pass as ?before= for the next page; null at the end")


class ClipOut(Model):
    id: str
    index: int
    status: ClipStatus
    title: str
    hook: str
    reason: str
    hashtags: list[str]
    score: float
    start: float
    end: float
    duration: float
    width: int | None
    height: int | None
    size: int | None
    renderer: str | None
    url: str | None = Field(description="the mp4; a short-lived presigned URL on S3")
    preview_url: str | None = Field(description="a jpg frame")
    srt_url: str | None
    vtt_url: str | None


class ClipList(Model):
    clips: list[ClipOut]


class UserOut(Model):
    id: str
    email: str
    plan: str
    language: str
    webhook_secret: str = Field(description="HMAC-SHA256 key of X-Kadrio-Signature")


class ConsentOut(Model):
    kind: str
    version: str
    text: dict[str, str]


class ErrorDetail(Model):
    code: str
    message: str


class ErrorOut(Model):
    error: ErrorDetail
