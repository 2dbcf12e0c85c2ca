"""Data contracts shared by every stage, plugin and process (JSON on disk)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Seconds = Annotated[float, Field(ge=0)]
Layout = Literal["auto", "track", "fit"]
Order = Literal["score", "time"]


class Contract(BaseModel):
    """Base of every on-disk model: unknown keys are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Word(Contract):
    text: str
    start: Seconds
    end: Seconds
    confidence: float = Field(default=1.0, ge=0, le=1)
    speaker: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Word:
        if self.end < self.start:
            raise ValueError(
                f"word {self.text!r} ends ({self.end}) before it starts ({self.start})"
            )
        return self


class SourceRef(Contract):
    """Identifies a media file without reading all of it (see media.fingerprint)."""

    name: str
    size: int
    fingerprint: str


class Transcript(Contract):
    language: str
    duration: Seconds
    words: list[Word]
    provider: str
    source: SourceRef | None = None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class Moment(Contract):
    start: Seconds
    end: Seconds
    score: float = Field(ge=0, le=100)
    title: str
    hook: str = ""
    reason: str = ""
    hashtags: list[str] = Field(default_factory=list)
    cuts: list[tuple[Seconds, Seconds]] = Field(
        default_factory=list,
        description="[start, end] spans inside the moment (source seconds) the renderer leaves "
        "out: fillers, long pauses",
    )

    @property
    def duration(self) -> float:
        return self.end - self.start

    @model_validator(mode="after")
    def _ordered(self) -> Moment:
        if self.end <= self.start:
            raise ValueError(f"moment ends ({self.end}) at or before it starts ({self.start})")
        return self


class SelectionRequest(Contract):
    """What the user asked the selector for."""

    max_clips: int = Field(default=10, ge=1, le=100)
    min_seconds: float = Field(default=20.0, gt=0)
    max_seconds: float = Field(default=60.0, gt=0)
    language: str | None = None
    prompt: str | None = None
    order: Order = Field(
        default="score", description="list moments best first or in timeline order"
    )

    @model_validator(mode="after")
    def _range(self) -> SelectionRequest:
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"max_seconds ({self.max_seconds}) is below min_seconds ({self.min_seconds})"
            )
        return self


class TranscriptionRequest(Contract):
    language: str | None = None
    duration: Seconds = 0.0


class MediaInfo(Contract):
    path: Path
    duration: Seconds
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_codec: str | None = None
    audio_codec: str | None = None


ASPECTS: dict[str, tuple[int, int]] = {
    "9:16": (1080, 1920),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
    "16:9": (1920, 1080),
}
Aspect = Literal["9:16", "1:1", "4:5", "16:9"]


class OutputFormat(Contract):
    aspect: Aspect = "9:16"
    width: int = Field(default=0, ge=0, le=4096, description="0: from the aspect ratio")
    height: int = Field(default=0, ge=0, le=4096, description="0: from the aspect ratio")
    fps: float = Field(default=30, gt=0, le=120)
    crf: int = Field(default=21, ge=0, le=51)
    preset: str = "veryfast"
    audio_bitrate: str = "128k"

    @model_validator(mode="after")
    def _size(self) -> OutputFormat:
        if not self.width or not self.height:
            self.width, self.height = ASPECTS[self.aspect]
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 16:
            raise ValueError(f"output size {self.width}x{self.height} must be even, >= 16")
        return self


class ClipPlan(Contract):
    """Everything a renderer needs to produce one clip, with no settings lookups of its own."""

    index: int = Field(ge=1)
    moment: Moment
    words: list[Word] = Field(
        default_factory=list, description="words inside the clip, source time"
    )
    media: MediaInfo
    output: OutputFormat = Field(default_factory=OutputFormat)
    stem: Path = Field(description="output path without extension, e.g. out/clip-01")
    caption_style: str = "bold"
    layout: Layout = "auto"
    extra: dict[str, Any] = Field(default_factory=dict, description="renderer-specific plan data")


class RenderedClip(Contract):
    index: int
    mp4: Path
    srt: Path
    vtt: Path
    jpg: Path
    start: Seconds
    end: Seconds
    width: int
    height: int
    renderer: str
    plan: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start


class ProviderAttempt(Contract):
    stage: str
    provider: str
    ok: bool
    error: str | None = None


class ClipEntry(Contract):
    index: int
    files: dict[str, str]
    start: Seconds
    end: Seconds
    duration: Seconds
    score: float
    title: str
    size: int
    width: int
    height: int
    plan: dict[str, Any] = Field(default_factory=dict)


class Manifest(Contract):
    kadrio_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: SourceRef
    media: MediaInfo
    settings: dict[str, Any]
    providers: dict[str, str]
    attempts: list[ProviderAttempt] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    message: str | None = None
    clips: list[ClipEntry] = Field(default_factory=list)
    published: Publication | None = Field(
        default=None, description="where the output files were uploaded (storage other than local)"
    )


class Publication(Contract):
    """The output folder as uploaded to a storage provider."""

    storage: str
    prefix: str
    keys: list[str] = Field(default_factory=list)


class ReceiptItem(Contract):
    """One line of a fiscal receipt (54-FZ)."""

    name: str = Field(max_length=128)
    quantity: float = Field(default=1, gt=0)
    sum: Decimal = Field(ge=0, description="rubles for the whole line")
    tax: str = "none"
    payment_method: str = "full_payment"
    payment_object: str = "service"


class Invoice(Contract):
    """What a payment provider needs to take a payment: nothing else about the user."""

    number: int = Field(ge=1, description="our invoice number (Robokassa InvId)")
    amount: Decimal = Field(gt=0, decimal_places=2, description="rubles")
    description: str = Field(max_length=100)
    email: str | None = None
    language: Literal["ru", "en"] = "ru"
    extra: dict[str, str] = Field(default_factory=dict, description="echoed back on payment")
    receipt: list[ReceiptItem] | None = None


class PaymentNotice(Contract):
    """A provider's verified word that an invoice was paid."""

    number: int
    amount: Decimal
    extra: dict[str, str] = Field(default_factory=dict)
    provider: str


class Message(Contract):
    """An email-like notification, independent of the delivery provider."""

    to: str
    subject: str
    text: str
    html: str | None = None
    sender: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
