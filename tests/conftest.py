"""Shared fixtures: real media files, a real `kadrio` process, isolated settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fakes.fixtures import (  # noqa: F401  fakes of the cloud APIs, SeaweedFS, SMTP
    fake_assemblyai,
    fake_claude,
    fake_openai,
    fake_resend,
    s3_bucket,
    seaweedfs,
    smtp_server,
    smtp_tls,
)

FIXTURES = Path(__file__).parent / "fixtures"
KADRIO = Path(sys.executable).with_name("kadrio")


@pytest.fixture(autouse=True)
def isolated_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No kadrio.toml, KADRIO_* variable or data dir of the developer leaks into a test."""
    for name in list(os.environ):
        if name.startswith("KADRIO_"):
            monkeypatch.delenv(name)
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("KADRIO_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield data


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_kadrio(*args: str | Path, env: dict[str, str] | None = None, timeout: int = 600) -> Result:
    """Run the installed `kadrio` console script as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [str(KADRIO), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Streams:
    duration: float
    width: int
    height: int
    fps: float
    video_codec: str | None
    audio_codec: str | None
    audio_rate: int


def streams(path: Path) -> Streams:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        return Streams(
            duration=(c.duration or 0) / 1_000_000,
            width=v.codec_context.width if v else 0,
            height=v.codec_context.height if v else 0,
            fps=float(v.average_rate) if v else 0.0,
            video_codec=v.codec_context.name if v else None,
            audio_codec=a.codec_context.name if a else None,
            audio_rate=a.codec_context.sample_rate if a else 0,
        )
