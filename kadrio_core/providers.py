"""The small interfaces every provider plugin implements.

A provider is a class with a stable ``name``, a pydantic ``Options`` model (unknown keys are an
error) and one or a few methods. Instances are built by the plugin manager from settings:
``Provider(options)``; they hold no per-job state so one instance can serve many jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from .models import (
    ClipPlan,
    Invoice,
    Message,
    Moment,
    PaymentNotice,
    RenderedClip,
    SelectionRequest,
    Transcript,
    TranscriptionRequest,
)
from .settings import Settings

Progress = Callable[[float], None]
"""Called with the fraction (0.0-1.0) of the current stage that is done."""


class ProviderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provider(ABC):
    name: ClassVar[str]
    kind: ClassVar[str]
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    description: ClassVar[str] = ""

    def __init__(
        self, options: ProviderOptions | None = None, settings: Settings | None = None
    ) -> None:
        self.options = options if options is not None else self.Options()
        self.settings = settings if settings is not None else Settings()

    def check(self) -> None:
        """Raise BadInput before any work when this provider cannot run (no API key, say)."""
        return None

    @classmethod
    def credentials_status(cls) -> str | None:
        """'set', 'missing' or None when the provider needs no credentials (never the secret)."""
        return None


def _noop(_: float) -> None:
    return None


class Transcriber(Provider):
    kind = "transcriber"

    def check_language(self, language: str | None) -> None:
        """Raise BadInput before any work when ``language`` cannot be transcribed."""

    @abstractmethod
    def transcribe(
        self, audio_path: Path, options: TranscriptionRequest, progress: Progress = _noop
    ) -> Transcript:
        """Transcribe 16 kHz mono audio into words with timestamps in seconds."""


class Selector(Provider):
    kind = "selector"

    @abstractmethod
    def select(
        self, transcript: Transcript, request: SelectionRequest, progress: Progress = _noop
    ) -> list[Moment]:
        """Pick up to ``request.max_clips`` non-overlapping moments, best first."""


class Renderer(Provider):
    kind = "renderer"

    @abstractmethod
    def render(self, source: Path, plan: ClipPlan, progress: Progress = _noop) -> RenderedClip:
        """Render one clip (mp4, srt, vtt, jpg at ``plan.stem``) from the source media."""


class Storage(Provider):
    kind = "storage"

    @abstractmethod
    def put(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` (overwriting)."""

    @abstractmethod
    def get(self, key: str, dest: Path) -> Path:
        """Copy the object ``key`` to ``dest``; raise FileNotFoundError when it is absent."""

    @abstractmethod
    def url(self, key: str, expires: int = 3600) -> str:
        """A URL from which the object can be fetched (short-lived where the backend can)."""

    @abstractmethod
    def delete(self, key_or_prefix: str) -> int:
        """Delete one object, or every object under a prefix ending in '/'; return the count."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, sorted."""


class Notifier(Provider):
    kind = "notifier"

    @abstractmethod
    def send(self, message: Message) -> str:
        """Deliver the message; return a provider id for it."""


class Payments(Provider):
    kind = "payments"

    @abstractmethod
    def checkout_url(self, invoice: Invoice) -> str:
        """The URL that takes the payer to the provider's payment page for ``invoice``."""

    @abstractmethod
    def verify_notification(self, params: Mapping[str, str]) -> PaymentNotice:
        """Check a server-to-server payment notification; raise BadInput when it is forged."""

    def acknowledge(self, notice: PaymentNotice) -> str:
        """The body to answer a verified notification with."""
        return "OK"


KINDS: dict[str, type[Provider]] = {
    "transcriber": Transcriber,
    "selector": Selector,
    "renderer": Renderer,
    "storage": Storage,
    "notifier": Notifier,
    "payments": Payments,
}
