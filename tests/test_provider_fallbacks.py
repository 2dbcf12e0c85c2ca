"""`kadrio clip` end to end with the cloud providers: the real `kadrio` process, the real SDKs
against the fake APIs on 127.0.0.1, a real SeaweedFS, and every fallback case."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import pytest

from kadrio_core.models import Manifest, Transcript

from .conftest import FIXTURES, Result, run_kadrio
from .fakes.providers import FakeAssemblyAI, FakeClaude, overloaded
from .fakes.seaweedfs import SECRET_KEY, SeaweedFS, free_ports
from .fakes.server import Reply

CLIP = ["--max-clips", "2", "--min-seconds", "8", "--max-seconds", "15"]
FAST = {
    "KADRIO_OUTPUT__WIDTH": "180",
    "KADRIO_OUTPUT__HEIGHT": "320",
    "KADRIO_OUTPUT__PRESET": "ultrafast",
    "KADRIO_PROVIDERS__ASSEMBLYAI__POLL_INTERVAL": "0.05",
    "KADRIO_PROVIDERS__ASSEMBLYAI__BACKOFF": "0.01",
    "KADRIO_PROVIDERS__ASSEMBLYAI__RETRIES": "1",
    "KADRIO_PROVIDERS__CLAUDE__BACKOFF": "0.01",
    "KADRIO_PROVIDERS__CLAUDE__RETRIES": "1",
    "KADRIO_PROVIDERS__CLAUDE__MODEL": "claude-e2e-model",
}


def clip(out: Path, *extra: str, env: dict[str, str]) -> Result:
    return run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, *CLIP, *extra, env={**FAST, **env})


def manifest_of(out: Path) -> Manifest:
    return Manifest.model_validate_json((out / "manifest.json").read_text())


def assert_one_line_failure(result: Result, *needles: str) -> str:
    assert result.code == 1, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kadrio: error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_assemblyai_claude_and_s3_end_to_end(
    fake_assemblyai: FakeAssemblyAI,
    fake_claude: FakeClaude,
    seaweedfs: SeaweedFS,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "clips"
    env = {
        "KADRIO_TRANSCRIBER": "assemblyai",
        "KADRIO_SELECTOR": "claude",
        "KADRIO_STORAGE": "s3",
        **fake_assemblyai.env,
        **fake_claude.env,
        **seaweedfs.env(s3_bucket),
    }
    result = clip(out, "-q", env=env)
    assert result.code == 0, result.stderr
    manifest = manifest_of(out)
    assert manifest.providers == {
        "transcriber": "assemblyai",
        "selector": "claude",
        "renderer": "ffmpeg",
        "storage": "s3",
    }
    assert all(a.ok for a in manifest.attempts)
    assert [a.stage for a in manifest.attempts] == [
        "transcriber",
        "selector",
        "renderer",
        "renderer",
        "storage",
    ]
    assert len(manifest.clips) == 2
    assert manifest.clips[0].title.startswith("So which plants")  # the fake model's pick
    transcript = Transcript.model_validate_json((out / "transcript.json").read_text())
    assert transcript.provider == "assemblyai" and {w.speaker for w in transcript.words} == {
        "A",
        "B",
    }

    # AssemblyAI got the 16 kHz audio, not the video
    (upload,) = fake_assemblyai.server.calls("POST", "/v2/upload")
    with wave.open(io.BytesIO(upload.body)) as w:
        assert (w.getframerate(), w.getnchannels()) == (16_000, 1)
        assert abs(w.getnframes() / 16_000 - manifest.media.duration) < 0.5
    # Claude got the transcript text, with none of the user's file names or paths
    (ask,) = fake_claude.server.calls("POST", "/v1/messages")
    assert ask.json()["model"] == "claude-e2e-model"
    assert "talk.mp4" not in ask.text and str(tmp_path) not in ask.text

    # every output file is in the bucket under the job's prefix, manifest.json included
    published = manifest.published
    assert published is not None and published.storage == "s3"
    assert published.prefix == f"clips/{manifest.source.fingerprint}/"
    local = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert sorted(k.removeprefix(published.prefix) for k in published.keys) == local
    s3 = seaweedfs.client()
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix=published.prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(published.keys)
    mp4 = s3.get_object(Bucket=s3_bucket, Key=published.prefix + "clip-01.mp4")["Body"].read()
    assert mp4 == (out / "clip-01.mp4").read_bytes()
    uploaded = s3.get_object(Bucket=s3_bucket, Key=published.prefix + "manifest.json")
    assert json.loads(uploaded["Body"].read())["published"]["keys"] == published.keys
    assert SECRET_KEY not in (out / "manifest.json").read_text()
    assert fake_claude.key not in (out / "manifest.json").read_text()

    # a rerun with fewer clips reuses the transcript and leaves no stale objects behind
    rerun = clip(out, "-q", "--max-clips", "1", env=env)
    assert rerun.code == 0, rerun.stderr
    assert len(fake_assemblyai.server.calls("POST", "/v2/upload")) == 1
    keys = manifest_of(out).published.keys  # type: ignore[union-attr]
    assert published.prefix + "clip-02.mp4" not in keys
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix=published.prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(keys)

    # `kadrio render` of the moments, into another folder, publishes that folder the same way
    again = tmp_path / "again"
    args = (FIXTURES / "talk.mp4", out / "moments.json", "-o", again, "-q")
    rendered = run_kadrio("render", *args, env={**FAST, **env})
    assert rendered.code == 0, rendered.stderr
    again_published = manifest_of(again).published
    assert again_published is not None and again_published.prefix == published.prefix
    assert sorted(k.removeprefix(published.prefix) for k in again_published.keys) == sorted(
        p.name for p in again.iterdir() if not p.name.startswith(".")
    )
    mp4 = s3.get_object(Bucket=s3_bucket, Key=published.prefix + "clip-01.mp4")["Body"].read()
    assert mp4 == (again / "clip-01.mp4").read_bytes()
    # a wrong storage option stops `kadrio render` before it renders anything
    broken = run_kadrio("render", *args[:3], tmp_path / "broken", "-q",
                        env={**FAST, **env, "KADRIO_PROVIDERS__S3__BUCKET": ""})  # fmt: skip
    assert broken.code == 2, broken.stderr
    assert not (tmp_path / "broken").exists()


def test_both_cloud_stages_down_fall_back_to_the_local_providers(
    fake_assemblyai: FakeAssemblyAI, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    fake_assemblyai.server.script("POST", "/v2/upload", *[Reply(500, {"error": "boom"})] * 2)
    fake_claude.server.script("POST", "/v1/messages", overloaded(), overloaded())
    out = tmp_path / "clips"
    env = {
        "KADRIO_TRANSCRIBER": "assemblyai,whisper",
        "KADRIO_SELECTOR": "claude,local",
        **fake_assemblyai.env,
        **fake_claude.env,
    }
    result = clip(out, env=env)
    assert result.code == 0, result.stderr
    assert "transcriber 'assemblyai' failed" in result.stderr
    assert "trying the next one" in result.stderr
    manifest = manifest_of(out)
    assert manifest.providers["transcriber"] == "whisper"
    assert manifest.providers["selector"] == "local"
    attempts = [(a.stage, a.provider, a.ok) for a in manifest.attempts if a.stage != "renderer"]
    assert attempts == [
        ("transcriber", "assemblyai", False),
        ("transcriber", "whisper", True),
        ("selector", "claude", False),
        ("selector", "local", True),
    ]
    why = {a.provider: a.error or "" for a in manifest.attempts if not a.ok}
    assert "HTTP 500" in why["assemblyai"] and "after 2 attempts" in why["assemblyai"]
    assert "overloaded" in why["claude"] and "after 2 attempts" in why["claude"]
    assert len(fake_assemblyai.server.calls("POST", "/v2/upload")) == 2
    assert len(fake_claude.server.calls("POST", "/v1/messages")) == 2
    assert manifest.clips and manifest.published is None  # storage is local: nothing uploaded
    transcript = Transcript.model_validate_json((out / "transcript.json").read_text())
    assert transcript.provider == "whisper"


def test_an_invalid_key_stops_at_once_without_falling_back(
    fake_assemblyai: FakeAssemblyAI, tmp_path: Path
) -> None:
    out = tmp_path / "clips"
    env = {
        "KADRIO_TRANSCRIBER": "assemblyai,whisper",
        **fake_assemblyai.env,
        "ASSEMBLYAI_API_KEY": "wrong-key",
    }
    result = clip(out, "-q", env=env)
    line = assert_one_line_failure(result, "assemblyai", "invalid or unauthorised API key")
    assert "wrong-key" not in line
    assert len(fake_assemblyai.server.requests) == 1  # no retry loop
    assert not (out / "transcript.json").exists()  # whisper never ran


@pytest.mark.parametrize("stage", ["transcriber", "selector"])
def test_a_single_provider_down_is_one_line_and_exit_1(
    stage: str, fake_assemblyai: FakeAssemblyAI, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    if stage == "transcriber":
        fake_assemblyai.server.script("POST", "/v2/upload", Reply(200, delay=1.5), Reply(503))
        needles = ["transcriber failed", "assemblyai", "HTTP 503", "after 2 attempts"]
    else:
        fake_claude.server.script("POST", "/v1/messages", Reply(500), Reply.malformed())
        needles = ["selector failed", "claude", "malformed", "after 2 attempts"]
    out = tmp_path / "clips"
    env = {
        "KADRIO_TRANSCRIBER": "assemblyai",
        "KADRIO_SELECTOR": "claude",
        "KADRIO_PROVIDERS__ASSEMBLYAI__TIMEOUT": "0.5",
        **fake_assemblyai.env,
        **fake_claude.env,
    }
    assert_one_line_failure(clip(out, "-q", env=env), *needles)
    assert not list(out.glob("clip-*"))


def test_storage_down_keeps_the_clips_and_says_so(
    fake_assemblyai: FakeAssemblyAI, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    out = tmp_path / "clips"
    env = {
        "KADRIO_TRANSCRIBER": "assemblyai",
        "KADRIO_SELECTOR": "claude",
        "KADRIO_STORAGE": "s3",
        "KADRIO_PROVIDERS__S3__BUCKET": "kadrio",
        "KADRIO_PROVIDERS__S3__ENDPOINT_URL": f"http://127.0.0.1:{free_ports(1)[0]}",
        "KADRIO_PROVIDERS__S3__REGION": "ru-1",
        "KADRIO_PROVIDERS__S3__ACCESS_KEY_ID": "k",
        "KADRIO_PROVIDERS__S3__SECRET_ACCESS_KEY": "s",
        "KADRIO_PROVIDERS__S3__RETRIES": "0",
        **fake_assemblyai.env,
        **fake_claude.env,
    }
    result = clip(out, "-q", "--max-clips", "1", env=env)
    assert_one_line_failure(result, "storage failed", "s3 upload of clips/", str(out))
    manifest = manifest_of(out)
    assert len(manifest.clips) == 1 and (out / "clip-01.mp4").is_file()
    assert manifest.published is None
    assert (manifest.attempts[-1].stage, manifest.attempts[-1].ok) == ("storage", False)


def test_plugins_lists_credentials_without_the_secrets(
    s3_bucket: str, seaweedfs: SeaweedFS
) -> None:
    env = {
        "ASSEMBLYAI_API_KEY": "aai-very-secret-value",
        "ANTHROPIC_API_KEY": "",
        "RESEND_API_KEY": "",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        **seaweedfs.env(s3_bucket),
    }
    result = run_kadrio("plugins", "--json", env=env)
    assert result.code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["assemblyai"]["credentials"] == "set"
    assert rows["claude"]["credentials"] == "missing"
    assert rows["resend"]["credentials"] == "missing"
    assert rows["s3"]["credentials"] == "set"
    assert rows["openai_compat"]["credentials"] is None
    assert rows["whisper"]["credentials"] is None
    for secret in ("aai-very-secret-value", SECRET_KEY):
        assert secret not in result.stdout
    table = run_kadrio("plugins", env=env)
    assert table.code == 0 and "aai-very-secret-value" not in table.stdout


@pytest.mark.parametrize(
    ("setting", "variable"),
    [("KADRIO_TRANSCRIBER", "ASSEMBLYAI_API_KEY"), ("KADRIO_SELECTOR", "ANTHROPIC_API_KEY")],
)
def test_a_missing_key_is_refused_before_any_work(
    setting: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(variable, raising=False)
    out = tmp_path / "clips"
    result = clip(out, env={setting: "assemblyai" if "TRANSCRIBER" in setting else "claude"})
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kadrio: error: ")
    assert variable in result.stderr and "needs an API key" in result.stderr
    assert not out.exists()  # nothing extracted, transcribed or written
