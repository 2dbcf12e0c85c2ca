"""The local whisper transcriber: chunked transcription keeps memory flat and words whole."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np

from kadrio_core.pipeline import Pipeline
from kadrio_core.settings import Settings
from kadrio_plugins.transcribers.whisper import chunk_bounds

from .conftest import FIXTURES


def test_chunks_are_cut_in_the_quietest_moment(tmp_path: Path) -> None:
    rate = 16_000
    noise = np.random.default_rng(1).normal(0, 3000, rate * 150).astype(np.int16)
    noise[int(64.0 * rate) : int(64.4 * rate)] = 0  # a pause 4 s after the nominal boundary
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(noise.tobytes())
    with wave.open(str(path)) as w:
        bounds = chunk_bounds(w, 60)
    assert bounds[0] == (0, bounds[1][0])
    assert 64.0 <= bounds[0][1] / rate <= 64.4
    assert bounds[-1][1] == len(noise)
    assert all(a < b for a, b in bounds)
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))


def test_chunked_transcription_matches_the_script() -> None:
    import jiwer

    settings = Settings(providers={"whisper": {"chunk_seconds": 60}})
    transcript = Pipeline(settings).transcribe(FIXTURES / "talk.mp4")
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    assert transcript.words[-1].end > 60  # words after the chunk boundary carry their offset

    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())

    wer = jiwer.wer(norm((FIXTURES / "talk.txt").read_text()), norm(transcript.text))
    assert wer <= 0.25, wer
