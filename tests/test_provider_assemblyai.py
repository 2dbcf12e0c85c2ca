"""The AssemblyAI transcriber: the real `assemblyai` SDK against a fake API on 127.0.0.1."""

from __future__ import annotations

import io
import itertools
import wave
from pathlib import Path

import pytest

from kadrio_core.errors import BadInput, ProviderError, ProviderUnavailable
from kadrio_core.media import extract_audio
from kadrio_core.models import TranscriptionRequest
from kadrio_core.pipeline import Pipeline
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

from .conftest import FIXTURES
from .fakes.providers import FakeAssemblyAI
from .fakes.server import Reply

FAST = {"backoff": 0.01, "max_backoff": 0.05, "retries": 2, "poll_interval": 0.02, "timeout": 2}


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_audio(FIXTURES / "talk-audio.m4a", tmp_path_factory.mktemp("aai") / "a.wav")


@pytest.fixture
def aai(fake_assemblyai: FakeAssemblyAI, monkeypatch: pytest.MonkeyPatch) -> FakeAssemblyAI:
    for name, value in fake_assemblyai.env.items():
        monkeypatch.setenv(name, value)
    return fake_assemblyai


def transcriber(**options: object):  # type: ignore[no-untyped-def]
    return registry("transcriber").create(
        "assemblyai", Settings(providers={"assemblyai": {**FAST, **options}})
    )


def test_words_in_seconds_with_speakers(aai: FakeAssemblyAI, audio: Path) -> None:
    fractions: list[float] = []
    transcript = transcriber().transcribe(audio, TranscriptionRequest(), fractions.append)
    assert transcript.provider == "assemblyai"
    assert transcript.language == "en"  # 'en_us' from the API
    script = (FIXTURES / "talk.txt").read_text().split()
    assert [w.text for w in transcript.words] == script
    sent = aai.jobs.popitem() if aai.jobs else None
    assert sent is None  # the transcript was deleted at AssemblyAI after it was fetched
    delete = aai.server.calls("DELETE")
    assert len(delete) == 1
    fetched = aai.server.calls("GET")[-1]
    assert delete[0].path == fetched.path
    # milliseconds became seconds, in order, inside the audio
    with wave.open(str(audio)) as w:
        duration = w.getnframes() / w.getframerate()
    first, last = transcript.words[0], transcript.words[-1]
    assert 0.5 < first.start < first.end < 1.5
    assert duration - 1.5 < last.end <= duration
    assert all(a.start <= b.start for a, b in itertools.pairwise(transcript.words))
    assert {w.speaker for w in transcript.words} == {"A", "B"}
    assert transcript.duration == pytest.approx(duration, abs=0.01)
    assert fractions[-1] == 1.0


def test_asks_for_timestamps_speakers_and_language_detection(
    aai: FakeAssemblyAI, audio: Path
) -> None:
    transcriber().transcribe(audio, TranscriptionRequest())
    (create,) = aai.server.calls("POST", "/v2/transcript")
    body = create.json()
    assert body["speaker_labels"] is True
    assert body["language_detection"] is True
    assert "language_code" not in body
    assert body["audio_url"].startswith(aai.server.url + "/files/")
    assert create.headers["authorization"] == aai.key


def test_a_given_language_is_sent_instead_of_detection(aai: FakeAssemblyAI, audio: Path) -> None:
    transcript = transcriber().transcribe(audio, TranscriptionRequest(language="ru"))
    body = aai.server.calls("POST", "/v2/transcript")[0].json()
    assert body["language_code"] == "ru" and "language_detection" not in body
    assert transcript.language == "ru"


def test_the_pipeline_uploads_audio_and_never_the_video(
    aai: FakeAssemblyAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(transcriber="assemblyai", providers={"assemblyai": FAST})
    transcript = Pipeline(settings).transcribe(FIXTURES / "talk.mp4")
    (upload,) = aai.server.calls("POST", "/v2/upload")
    video = (FIXTURES / "talk.mp4").read_bytes()
    assert upload.body[:4] == b"RIFF" and upload.body[8:12] == b"WAVE"
    assert b"ftyp" not in upload.body[:64] and upload.body[:4096] != video[:4096]
    with wave.open(io.BytesIO(upload.body)) as w:
        assert (w.getframerate(), w.getnchannels()) == (16_000, 1)
    assert transcript.source is not None and transcript.source.name == "talk.mp4"
    assert len(transcript.words) == len((FIXTURES / "talk.txt").read_text().split())


def test_a_poll_failure_is_retried_without_uploading_again(
    aai: FakeAssemblyAI, audio: Path
) -> None:
    aai.server.script("GET", r"/v2/transcript/(?P<id>[\w-]+)", Reply(503), Reply(500))
    transcript = transcriber().transcribe(audio, TranscriptionRequest())
    assert transcript.words
    assert len(aai.server.calls("POST", "/v2/upload")) == 1
    assert len(aai.server.calls("GET")) == 4  # 503, 500, processing, completed


def test_rate_limit_then_success(aai: FakeAssemblyAI, audio: Path) -> None:
    aai.server.script("POST", "/v2/upload", Reply(429, {"error": "Too many requests"}))
    assert transcriber().transcribe(audio, TranscriptionRequest()).words
    assert len(aai.server.calls("POST", "/v2/upload")) == 2


@pytest.mark.parametrize(
    "reply, why",
    [
        (Reply(500, {"error": "Internal server error"}), "HTTP 500"),
        (Reply(429, {"error": "Too many requests"}), "HTTP 429"),
        (Reply(200, delay=1.0), "timed out"),
        (Reply.malformed(), "malformed"),
    ],
    ids=["500", "429", "timeout", "malformed-json"],
)
def test_outage_after_retries_is_unavailable(
    aai: FakeAssemblyAI, audio: Path, reply: Reply, why: str
) -> None:
    aai.server.script("POST", "/v2/upload", reply, reply, reply)
    with pytest.raises(ProviderUnavailable, match=why) as caught:
        transcriber(timeout=0.3).transcribe(audio, TranscriptionRequest())
    assert "after 3 attempts" in str(caught.value)
    assert len(aai.server.calls("POST", "/v2/upload")) == 3  # 1 + FAST retries


def test_invalid_key_is_an_immediate_error(aai: FakeAssemblyAI, audio: Path) -> None:
    with pytest.raises(ProviderError, match="invalid or unauthorised API key") as caught:
        transcriber(api_key="wrong").transcribe(audio, TranscriptionRequest())
    assert not isinstance(caught.value, ProviderUnavailable)
    assert len(aai.server.requests) == 1  # no retry loop
    assert aai.server.requests[0].headers["authorization"] == "wrong"


def test_a_failed_transcription_is_unavailable(aai: FakeAssemblyAI, tmp_path: Path) -> None:
    not_audio = tmp_path / "noise.wav"
    not_audio.write_bytes(b"\x00" * 2000)
    with pytest.raises(ProviderUnavailable, match="does not appear to contain audio"):
        transcriber().transcribe(not_audio, TranscriptionRequest())


def test_unreachable_api_is_unavailable(audio: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .fakes.seaweedfs import free_ports

    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "k")
    monkeypatch.setenv("ASSEMBLYAI_BASE_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    with pytest.raises(ProviderUnavailable, match="network error"):
        transcriber().transcribe(audio, TranscriptionRequest())


def test_missing_key_is_a_configuration_error(audio: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    with pytest.raises(BadInput, match="ASSEMBLYAI_API_KEY"):
        transcriber().transcribe(audio, TranscriptionRequest())
