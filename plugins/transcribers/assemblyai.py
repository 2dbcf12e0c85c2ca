"""Transcription by AssemblyAI (the ``assemblyai`` SDK): word timestamps and speaker labels.

Only the extracted 16 kHz mono audio is uploaded, never the video. The key comes from
``providers.assemblyai.api_key`` or ``ASSEMBLYAI_API_KEY``; the base URL from
``providers.assemblyai.base_url`` or ``ASSEMBLYAI_BASE_URL`` (read by the SDK's own settings).
Upload, submit and each poll are retried separately, so a hiccup while polling does not upload
the audio again. The transcript is deleted at AssemblyAI once fetched (``delete_after``).
"""

from __future__ import annotations

import contextlib
import time
from json import JSONDecodeError
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core.errors import ProviderUnavailable
from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Transcript, TranscriptionRequest, Word
from kadrio_core.providers import Progress, ProviderOptions, Transcriber
from kadrio_core.remote import (
    ApiKeyed,
    RemoteOptions,
    Verdict,
    first_line,
    status_verdict,
    with_retries,
)

KEY_ENV = "ASSEMBLYAI_API_KEY"


class AssemblyAIOptions(RemoteOptions):
    api_key: str | None = Field(default=None, description=f"default: ${KEY_ENV}")
    base_url: str | None = Field(default=None, description="default: $ASSEMBLYAI_BASE_URL")
    speech_model: str | None = Field(default=None, description="e.g. 'universal'; default: API's")
    speaker_labels: bool = True
    language: str | None = Field(default=None, description="default: detect the language")
    poll_interval: float = Field(default=3.0, gt=0)
    poll_timeout: float = Field(default=4 * 3600.0, gt=0, description="give up after this long")
    delete_after: bool = Field(default=True, description="delete the transcript at AssemblyAI")


def classify(exc: Exception) -> Verdict | None:
    import assemblyai as aai
    import httpx
    import pydantic

    if isinstance(exc, httpx.TimeoutException):
        return Verdict("retry", f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):
        return Verdict("retry", f"network error ({type(exc).__name__}: {exc})")
    if isinstance(exc, aai.types.AssemblyAIError):
        status = getattr(exc, "status_code", None)
        detail = first_line(exc)
        if status is None:
            return Verdict("unavailable", detail or type(exc).__name__)
        return status_verdict(status, detail)
    if isinstance(exc, (JSONDecodeError, pydantic.ValidationError)):  # a reply not of the API
        return Verdict("retry", f"malformed reply ({type(exc).__name__})")
    return None


def wav_duration(path: Path) -> float:
    """Seconds of a WAV file (the pipeline hands over 16 kHz mono WAV); 0 when unreadable."""
    import wave

    try:
        with wave.open(str(path)) as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error):
        return 0.0


def language_of(code: str | None, fallback: str) -> str:
    """AssemblyAI says 'en_us' or 'en'; Kadrio keeps the ISO 639-1 part."""
    return (code or fallback).split("_")[0].lower() or fallback


class AssemblyAITranscriber(ApiKeyed, Transcriber):
    key_env = KEY_ENV
    name = "assemblyai"
    description = "AssemblyAI speech-to-text (uploads the audio only)"
    Options: ClassVar[type[ProviderOptions]] = AssemblyAIOptions
    options: AssemblyAIOptions

    def _client(self) -> Any:
        import assemblyai as aai

        key = self._key()
        extra = {"base_url": self.options.base_url} if self.options.base_url else {}
        # a fresh SDK Settings reads ASSEMBLYAI_BASE_URL now, not when the SDK was imported
        sdk_settings = aai.types.Settings(
            api_key=key,
            http_timeout=self.options.timeout,
            polling_interval=self.options.poll_interval,
            **extra,
        )
        return aai.Client(settings=sdk_settings)

    def _config(self, language: str | None) -> Any:
        import assemblyai as aai

        config = aai.TranscriptionConfig(
            speaker_labels=self.options.speaker_labels,
            punctuate=True,
            format_text=True,
            language_code=language,
            language_detection=None if language else True,
        )
        if self.options.speech_model:
            config.speech_model = self.options.speech_model  # type: ignore[assignment]
        return config

    def transcribe(
        self, audio_path: Path, options: TranscriptionRequest, progress: Progress = lambda _: None
    ) -> Transcript:
        client = self._client()
        try:
            return self._transcribe(client, audio_path, options, progress)
        finally:
            client.http_client.close()

    def _transcribe(
        self, client: Any, audio_path: Path, options: TranscriptionRequest, progress: Progress
    ) -> Transcript:
        import assemblyai as aai
        from assemblyai import api as aai_api

        transcriber = aai.Transcriber(client=client, max_workers=1)
        language = options.language or self.options.language
        o = self.options

        def retried(call: Any, what: str) -> Any:
            return with_retries(call, classify, o, f"assemblyai {what}")

        upload_url = retried(lambda: transcriber.upload_file(str(audio_path)), "upload")
        progress(0.3)
        job = retried(lambda: transcriber.submit(upload_url, self._config(language)), "submit")
        job_id = job.id
        progress(0.4)
        deadline = time.monotonic() + o.poll_timeout
        terminal = (aai.TranscriptStatus.completed, aai.TranscriptStatus.error)
        while True:
            response = retried(lambda: aai_api.get_transcript(client.http_client, job_id), "poll")
            if response.status in terminal:
                break
            if time.monotonic() > deadline:
                raise ProviderUnavailable(f"assemblyai took longer than {o.poll_timeout:g} s")
            time.sleep(o.poll_interval)
        if response.status == aai.TranscriptStatus.error:
            raise ProviderUnavailable(f"assemblyai could not transcribe: {response.error}")
        if o.delete_after:
            # privacy, best effort: a failure here must not lose the transcript
            with contextlib.suppress(Exception):
                aai_api.delete_transcript(client.http_client, job_id)
        progress(1.0)
        return self._to_transcript(response.model_dump(), audio_path, options, language)

    def _to_transcript(
        self,
        response: dict[str, Any],
        audio_path: Path,
        options: TranscriptionRequest,
        language: str | None,
    ) -> Transcript:
        words: list[Word] = []
        for w in response.get("words") or []:
            text = str(w.get("text", "")).strip()
            if not text:
                continue
            start = max(int(w.get("start") or 0), 0) / 1000
            end = max(int(w.get("end") or 0) / 1000, start)
            words.append(
                Word(
                    text=text,
                    start=round(start, 3),
                    end=round(end, 3),
                    confidence=round(min(max(float(w.get("confidence", 1.0)), 0.0), 1.0), 3),
                    speaker=str(w["speaker"]) if w.get("speaker") is not None else None,
                )
            )
        duration = options.duration or wav_duration(audio_path)
        duration = duration or float(response.get("audio_duration") or 0)  # whole seconds
        duration = max(duration, words[-1].end if words else 0.0)
        return Transcript(
            language=language_of(response.get("language_code"), language or "en"),
            duration=round(duration, 3),
            words=words,
            provider=self.name,
        )


@hookimpl
def register_transcribers(register):  # type: ignore[no-untyped-def]
    register(AssemblyAITranscriber)
