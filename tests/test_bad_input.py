"""Bad input gets one clear line on stderr, the right exit code, and leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import FIXTURES, Result, run_kadrio


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.code == 2, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kadrio: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "clips"


def test_missing_file(tmp_path: Path, out: Path) -> None:
    result = run_kadrio("clip", tmp_path / "nope.mp4", "-o", out)
    assert_one_line_error(result, "file not found", "nope.mp4")
    assert not out.exists()


def test_empty_file(tmp_path: Path, out: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_one_line_error(run_kadrio("clip", empty, "-o", out), "empty")
    assert not out.exists()


def test_text_file_named_like_a_video(tmp_path: Path, out: Path) -> None:
    fake = tmp_path / "talk.mp4"
    fake.write_text("this is not a video\n" * 100)
    assert_one_line_error(run_kadrio("clip", fake, "-o", out), "talk.mp4")
    assert not out.exists()


def test_truncated_video(tmp_path: Path, out: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes((FIXTURES / "talk.mp4").read_bytes()[:4000])
    assert_one_line_error(run_kadrio("clip", broken, "-o", out), "broken.mp4")
    assert not out.exists()


def test_folder_as_input(tmp_path: Path, out: Path) -> None:
    assert_one_line_error(run_kadrio("clip", tmp_path, "-o", out), "not a file")


def test_video_with_no_speech_makes_zero_clips(out: Path) -> None:
    result = run_kadrio("clip", FIXTURES / "silence.mp4", "-o", out, "--min-seconds", "5")
    assert result.code == 0, result.stderr
    assert "no speech found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(out.glob("clip-*"))
    assert (out / "manifest.json").is_file()


def test_video_shorter_than_the_minimum_clip(out: Path) -> None:
    result = run_kadrio("clip", FIXTURES / "silence.mp4", "-o", out, "--min-seconds", "30")
    assert_one_line_error(result, "shorter than the minimum clip length", "30 s")
    assert not out.exists()


def test_output_folder_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", blocker / "clips")
    assert_one_line_error(result, "cannot write to output folder")
    assert blocker.read_text() == "x"


def test_output_path_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", blocker)
    assert_one_line_error(result, "not a folder")


@pytest.mark.parametrize("flag", ["--transcriber", "--selector", "--renderer"])
def test_unknown_plugin_name_lists_the_available_ones(flag: str, out: Path) -> None:
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, flag, "nosuch")
    assert_one_line_error(result, "unknown", "'nosuch'", "available:")
    assert not out.exists()


def test_unknown_caption_style(out: Path) -> None:
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, "--caption-style", "comic")
    assert_one_line_error(result, "caption style", "bold", "karaoke", "minimal")


def test_min_above_max(out: Path) -> None:
    result = run_kadrio(
        "clip", FIXTURES / "talk.mp4", "-o", out, "--min-seconds", "50", "--max-seconds", "30"
    )
    assert_one_line_error(result, "max_seconds")


def test_bad_setting_in_environment(out: Path) -> None:
    result = run_kadrio(
        "clip", FIXTURES / "talk.mp4", "-o", out, env={"KADRIO_OUTPUT__CRF": "loud"}
    )
    assert_one_line_error(result, "output.crf")


def test_unknown_provider_option(out: Path) -> None:
    result = run_kadrio(
        "clip", FIXTURES / "talk.mp4", "-o", out, env={"KADRIO_PROVIDERS__WHISPER__MODLE": "x"}
    )
    assert_one_line_error(result, "whisper", "modle")


def test_missing_config_file(out: Path, tmp_path: Path) -> None:
    result = run_kadrio(
        "clip", FIXTURES / "talk.mp4", "-o", out, env={"KADRIO_CONFIG": str(tmp_path / "k.toml")}
    )
    assert_one_line_error(result, "config file not found")


def test_broken_config_file(out: Path, tmp_path: Path) -> None:
    config = tmp_path / "kadrio.toml"
    config.write_text("max_clips = [unclosed\n")
    result = run_kadrio(
        "clip", FIXTURES / "talk.mp4", "-o", out, env={"KADRIO_CONFIG": str(config)}
    )
    assert_one_line_error(result, "invalid TOML")


def test_hostile_file_name_is_handled_as_a_file(tmp_path: Path) -> None:
    """Names that look like options, protocols or filter syntax are still just files."""
    hostile = tmp_path / "-i http:x, [v];'quote'.m4a"
    shutil.copy(FIXTURES / "talk-audio.m4a", hostile)
    out = tmp_path / "out [1]; 'x'"
    result = run_kadrio(
        "clip",
        hostile,
        "-o",
        out,
        "--min-seconds",
        "8",
        "--max-seconds",
        "12",
        "--max-clips",
        "1",
        "-q",
    )
    assert result.code == 0, result.stderr
    assert (out / "clip-01.mp4").stat().st_size > 0


def test_render_with_a_broken_moments_file(tmp_path: Path) -> None:
    moments = tmp_path / "moments.json"
    moments.write_text('[{"start": 5, "end": 2, "score": 10, "title": "x"}]')
    result = run_kadrio("render", FIXTURES / "talk.mp4", moments, "-o", tmp_path / "o")
    assert_one_line_error(result, "moments.json", "not a list of moments")


def test_render_without_a_transcript(tmp_path: Path) -> None:
    moments = tmp_path / "moments.json"
    moments.write_text('[{"start": 1, "end": 22, "score": 10, "title": "x"}]')
    result = run_kadrio("render", FIXTURES / "talk.mp4", moments, "-o", tmp_path / "o")
    assert_one_line_error(result, "no transcript")


def test_select_with_a_file_that_is_not_a_transcript(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{"hello": 1}')
    result = run_kadrio("select", bad, "-o", tmp_path / "m.json")
    assert_one_line_error(result, "not a Kadrio transcript")
    assert not (tmp_path / "m.json").exists()


def test_a_language_the_model_cannot_transcribe(out: Path) -> None:
    result = run_kadrio("clip", FIXTURES / "talk.mp4", "-o", out, "--language", "ru")
    assert_one_line_error(result, "English-only", "providers.whisper.model")
    assert not out.exists()
