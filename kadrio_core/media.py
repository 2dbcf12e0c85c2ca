"""Media helpers: probing with PyAV, the ffmpeg binary from imageio-ffmpeg, audio extraction."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from .errors import BadInput, KadrioError
from .models import MediaInfo, SourceRef

AUDIO_RATE = 16_000
_FINGERPRINT_CHUNK = 1 << 20


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary: $KADRIO_FFMPEG when set, else the static build imageio-ffmpeg ships."""
    explicit = os.environ.get("KADRIO_FFMPEG")
    if explicit:
        return explicit
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: Path) -> MediaInfo:
    """Describe a media file; raise BadInput for anything that is not playable media."""
    import av

    if not path.exists():
        raise BadInput(f"file not found: {path}")
    if not path.is_file():
        raise BadInput(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise BadInput(f"file is empty: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"not a readable video or audio file: {path} ({_short(exc)})") from None
    with container:
        video = next((s for s in container.streams.video), None)
        audio = next((s for s in container.streams.audio), None)
        if video is not None and video.codec_context.width == 0:
            video = None
        if video is None and audio is None:
            raise BadInput(f"no video or audio stream in {path}")
        duration = _duration(container, video, audio)
        if duration <= 0:
            raise BadInput(f"cannot tell the duration of {path}; the file may be corrupt")
        fps = float(video.average_rate or video.guessed_rate or 0) if video is not None else 0.0
        info = MediaInfo(
            path=path,
            duration=duration,
            has_video=video is not None,
            has_audio=audio is not None,
            width=video.codec_context.width if video is not None else 0,
            height=video.codec_context.height if video is not None else 0,
            fps=fps,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )
    _check_decodes(path, info)
    return info


def _duration(container, video, audio) -> float:  # type: ignore[no-untyped-def]
    if container.duration:
        return container.duration / 1_000_000
    best = 0.0
    for stream in (video, audio):
        if stream is not None and stream.duration and stream.time_base:
            best = max(best, float(stream.duration * stream.time_base))
    return best


def _check_decodes(path: Path, info: MediaInfo) -> None:
    """Decode the first frames: a container header alone does not make a file playable."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0] if info.has_audio else container.streams.video[0]
            for i, _frame in enumerate(container.decode(stream)):
                if i >= 2:
                    return
    except (av.FFmpegError, ValueError) as exc:
        raise BadInput(f"cannot decode {path}: {_short(exc)}") from None
    raise BadInput(f"no decodable frames in {path}; the file may be corrupt")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[Errno [-\d]+\]\s*", "", text)[:200]


def fingerprint(path: Path) -> SourceRef:
    """A cheap identity for a source: size plus a hash of its first and last megabyte."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            fh.seek(max(size - _FINGERPRINT_CHUNK, _FINGERPRINT_CHUNK))
            digest.update(fh.read(_FINGERPRINT_CHUNK))
    return SourceRef(name=path.name, size=size, fingerprint=digest.hexdigest()[:32])


def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Run ffmpeg with ``args``; report progress from its ``-progress`` stream; raise on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if progress is not None and duration:
        cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += list(args)
    # stderr goes to a file: a pipe that nobody reads could fill up and stall ffmpeg
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if progress is not None and duration and line.startswith("out_time_us="):
                    value = line.split("=", 1)[1].strip()
                    if value.isdigit():
                        progress(min(1.0, int(value) / 1_000_000 / duration))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.wait() != 0:
            errors.seek(0)
            tail = " | ".join(errors.read().strip().splitlines()[-3:])
            raise KadrioError(f"ffmpeg failed (exit {proc.returncode}): {tail}")


def extract_audio(source: Path, dest: Path) -> Path:
    """Decode the source's first audio stream once to 16 kHz mono 16-bit WAV at ``dest``."""
    tmp = dest.with_name(dest.name + ".part.wav")
    try:
        run_ffmpeg(
            [
                *("-i", f"file:{source}", "-map", "0:a:0", "-vn"),
                *("-ac", "1", "-ar", str(AUDIO_RATE), "-c:a", "pcm_s16le", f"file:{tmp}"),
            ]
        )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
