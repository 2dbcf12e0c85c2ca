"""`kadrio clip` on a real talk: streams, transcript quality, caption timing, manifest, reruns."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kadrio_core.models import Manifest, Moment, Transcript

from .conftest import FIXTURES, Result, run_kadrio, streams

MAX_WER = 0.25


@pytest.fixture(scope="module")
def clipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("e2e") / "clips"
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, "--max-clips", "2", "-q")
    assert result.code == 0, result.stderr
    return out, result


def _normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def test_outputs_are_playable_vertical_clips(clipped: tuple[Path, Result]) -> None:
    out, _ = clipped
    manifest = Manifest.model_validate_json((out / "manifest.json").read_text())
    assert 1 <= len(manifest.clips) <= 2
    for entry in manifest.clips:
        mp4 = out / entry.files["mp4"]
        s = streams(mp4)
        assert (s.width, s.height) == (1080, 1920)
        assert s.video_codec == "h264" and s.audio_codec == "aac"
        import av

        with av.open(str(mp4)) as c:  # limited range, as every player expects
            assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert s.fps == pytest.approx(30, abs=0.01)
        assert s.duration == pytest.approx(entry.duration, abs=0.25)
        assert 20 - 0.5 <= entry.duration <= 60 + 0.5
        assert entry.size == mp4.stat().st_size > 50_000
        for kind in ("srt", "vtt", "jpg"):
            assert (out / entry.files[kind]).stat().st_size > 0
        preview = streams(out / entry.files["jpg"])
        assert (preview.width, preview.height) == (1080, 1920)


def test_clip_audio_is_the_source_span(clipped: tuple[Path, Result]) -> None:
    """The clip's sound is speech: loud enough, not silence or a wrong stream."""
    import av
    import numpy as np

    out, _ = clipped
    with av.open(str(out / "clip-01.mp4")) as c:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 0.01


def test_transcript_matches_the_script(clipped: tuple[Path, Result]) -> None:
    import jiwer

    out, _ = clipped
    transcript = Transcript.model_validate_json((out / "transcript.json").read_text())
    assert transcript.provider == "whisper" and transcript.language == "en"
    reference = " ".join(_normalise((FIXTURES / "talk.txt").read_text()))
    hypothesis = " ".join(_normalise(transcript.text))
    wer = jiwer.wer(reference, hypothesis)
    assert wer <= MAX_WER, f"WER {wer:.2f}"
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    assert transcript.words[-1].end <= transcript.duration + 0.01


def _srt_cues(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, end = lines[1].split(" --> ")
        cues.append((seconds(start), seconds(end), " ".join(lines[2:])))
    return cues


def test_srt_follows_the_word_timings(clipped: tuple[Path, Result]) -> None:
    out, _ = clipped
    transcript = Transcript.model_validate_json((out / "transcript.json").read_text())
    manifest = Manifest.model_validate_json((out / "manifest.json").read_text())
    for entry in manifest.clips:
        cues = _srt_cues((out / entry.files["srt"]).read_text())
        assert cues
        inside = [w for w in transcript.words if entry.start <= (w.start + w.end) / 2 <= entry.end]
        assert " ".join(c[2] for c in cues).split() == [w.text for w in inside]
        position = 0
        for (start, end, text), next_cue in zip(cues, [*cues[1:], None], strict=True):
            first = inside[position]
            last = inside[position + len(text.split()) - 1]
            position += len(text.split())
            assert start == pytest.approx(max(first.start - entry.start, 0), abs=0.002)
            assert end >= last.end - entry.start - 0.002
            if next_cue:
                assert end <= next_cue[0] + 0.001
        assert cues[-1][1] <= entry.duration + 0.001
        vtt = (out / entry.files["vtt"]).read_text()
        assert vtt.startswith("WEBVTT\n") and vtt.count(" --> ") == len(cues)


def test_manifest_and_moments(clipped: tuple[Path, Result]) -> None:
    out, result = clipped
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["providers"] == {
        "transcriber": "whisper",
        "selector": "local",
        "renderer": "ffmpeg",
    }
    assert manifest["source"]["name"] == "talk.mp4"
    assert manifest["settings"]["max_clips"] == 2
    assert {"transcribe", "select", "render"} <= set(manifest["timings"])
    moments = [Moment.model_validate(m) for m in json.loads((out / "moments.json").read_text())]
    assert [round(m.start, 3) for m in moments] == [c["start"] for c in manifest["clips"]]
    for m in moments:
        assert 0 <= m.score <= 100 and m.title and m.reason
    for path in result.stdout.split():
        if path.endswith(".mp4"):
            assert Path(path).is_file()


def test_rerun_reuses_checkpoints(clipped: tuple[Path, Result], tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(clipped[0], out)
    transcript_before = (out / "transcript.json").stat().st_mtime_ns
    clip_before = (out / "clip-01.mp4").stat().st_mtime_ns
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, "--max-clips", "2")
    assert result.code == 0, result.stderr
    assert "Reusing transcript.json" in result.stderr
    assert (out / "transcript.json").stat().st_mtime_ns == transcript_before
    assert (out / "clip-01.mp4").stat().st_mtime_ns == clip_before
    manifest = json.loads((out / "manifest.json").read_text())
    assert "transcribe" not in manifest["timings"]
    assert "render" not in manifest["timings"]


def test_rerun_with_fewer_clips_removes_stale_files(
    clipped: tuple[Path, Result], tmp_path: Path
) -> None:
    out = tmp_path / "fewer"
    shutil.copytree(clipped[0], out)
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, "--max-clips", "1", "-q")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in out.glob("clip-*")) == [
        "clip-01.jpg",
        "clip-01.mp4",
        "clip-01.srt",
        "clip-01.vtt",
    ]
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 1


def test_render_a_hand_edited_moments_file(clipped: tuple[Path, Result], tmp_path: Path) -> None:
    src = clipped[0]
    work = tmp_path / "edit"
    work.mkdir()
    shutil.copy(src / "transcript.json", work)
    transcript = Transcript.model_validate_json((work / "transcript.json").read_text())
    middle = transcript.words[len(transcript.words) // 3]
    # a start inside a word must be snapped back to the word's start
    edited = [
        {
            "start": (middle.start + middle.end) / 2,
            "end": middle.start + 21.0,
            "score": 50,
            "title": "Edited by hand",
        }
    ]
    (work / "moments.json").write_text(json.dumps(edited))
    result = run_kadrio(
        "render",
        FIXTURES / "talk.mp4",
        work / "moments.json",
        "-o",
        work / "out",
        "--caption-style",
        "minimal",
        "-q",
    )
    assert result.code == 0, result.stderr
    s = streams(work / "out" / "clip-01.mp4")
    assert (s.width, s.height) == (1080, 1920)
    first_cue = _srt_cues((work / "out" / "clip-01.srt").read_text())[0]
    assert first_cue[2].split()[0] == middle.text
    assert "Edited by hand" in result.stdout
    manifest = Manifest.model_validate_json((work / "out" / "manifest.json").read_text())
    assert [c.title for c in manifest.clips] == ["Edited by hand"]
    assert manifest.providers == {"renderer": "ffmpeg"}


def test_transcribe_then_select_commands(tmp_path: Path) -> None:
    t = tmp_path / "t.json"
    result = run_kadrio("transcribe", FIXTURES / "talk-audio.m4a", "-o", t, "-q")
    assert result.code == 0, result.stderr
    transcript = Transcript.model_validate_json(t.read_text())
    assert len(transcript.words) > 30
    m = tmp_path / "m.json"
    result = run_kadrio("select", t, "-o", m, "--min-seconds", "8", "--max-seconds", "15", "-q")
    assert result.code == 0, result.stderr
    moments = [Moment.model_validate(x) for x in json.loads(m.read_text())]
    assert moments and all(7.9 <= x.duration <= 15.01 for x in moments)


def test_audio_only_input_renders_over_a_waveform(tmp_path: Path) -> None:
    out = tmp_path / "audio"
    result = run_kadrio(
        "clip",
        FIXTURES / "talk-audio.m4a",
        "-o",
        out,
        "--min-seconds",
        "8",
        "--max-seconds",
        "14",
        "--max-clips",
        "1",
        "-q",
    )
    assert result.code == 0, result.stderr
    s = streams(out / "clip-01.mp4")
    assert (s.width, s.height, s.video_codec, s.audio_codec) == (1080, 1920, "h264", "aac")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clips"][0]["plan"]["layout"] == "waveform"
