"""Models, settings, captions, word snapping and media helpers."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest
from pydantic import ValidationError

from kadrio_core import captions
from kadrio_core.errors import BadInput
from kadrio_core.media import extract_audio, fingerprint, probe
from kadrio_core.models import Moment, SelectionRequest, Word
from kadrio_core.settings import Settings, load_settings
from kadrio_core.words import snap_to_words

from .conftest import FIXTURES


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(text=t, start=s, end=e) for t, s, e in spec]


# -- models ---------------------------------------------------------------------------------


def test_models_refuse_impossible_values() -> None:
    with pytest.raises(ValidationError, match="ends"):
        Word(text="x", start=2, end=1)
    with pytest.raises(ValidationError, match="ends"):
        Moment(start=5, end=5, score=1, title="t")
    with pytest.raises(ValidationError):
        Moment(start=0, end=5, score=101, title="t")
    with pytest.raises(ValidationError, match="max_seconds"):
        SelectionRequest(min_seconds=30, max_seconds=20)
    with pytest.raises(ValidationError, match="extra"):
        Moment.model_validate({"start": 0, "end": 1, "score": 1, "title": "t", "colour": "red"})


# -- settings -------------------------------------------------------------------------------


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kadrio.toml"
    config.write_text(
        'selector = "local"\nmax_clips = 4\ncaption_style = "karaoke"\n'
        '[output]\ncrf = 19\n[providers.whisper]\nmodel = "tiny.en"\nthreads = 1\n'
    )
    monkeypatch.setenv("KADRIO_CONFIG", str(config))
    monkeypatch.setenv("KADRIO_MAX_CLIPS", "6")
    monkeypatch.setenv("KADRIO_TRANSCRIBER", "assemblyai, whisper")
    s = load_settings(caption_style="minimal")
    assert s.max_clips == 6  # environment over file
    assert s.caption_style == "minimal"  # explicit over everything
    assert s.output.crf == 19 and s.output.width == 1080  # file over defaults, nested
    assert s.transcriber == ["assemblyai", "whisper"]  # a fallback chain from a string
    assert s.selector == ["local"]
    assert s.provider_options("whisper") == {"model": "tiny.en", "threads": 1}


def test_kadrio_toml_in_the_working_folder_is_read(tmp_path: Path) -> None:
    Path("kadrio.toml").write_text("max_seconds = 45\n")
    assert load_settings().max_seconds == 45


def test_settings_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KADRIO_SELECTOR", " , ")
    with pytest.raises(BadInput, match="selector"):
        load_settings()
    monkeypatch.delenv("KADRIO_SELECTOR")
    with pytest.raises(BadInput, match="unknown_thing"):
        load_settings(unknown_thing=1)


def test_selection_request_from_settings() -> None:
    s = Settings(max_clips=3, min_seconds=15, max_seconds=40, language="ru")
    r = s.selection_request(max_clips=2)
    assert (r.max_clips, r.min_seconds, r.max_seconds, r.language) == (2, 15, 40, "ru")


# -- captions -------------------------------------------------------------------------------

TALK = words(
    ("Why", 0.50, 0.70),
    ("do", 0.72, 0.80),
    ("gardens", 0.85, 1.30),
    ("fail?", 1.32, 1.80),
    ("Water.", 3.00, 3.40),
    ("Most", 3.50, 3.70),
    ("people", 3.72, 4.00),
    ("water", 4.05, 4.30),
    ("too", 4.33, 4.50),
    ("often.", 4.55, 5.00),
)


def test_cues_break_at_sentences_pauses_and_length() -> None:
    cues = captions.make_cues(TALK, max_chars=20)
    assert [c.text for c in cues] == [
        "Why do gardens fail?",
        "Water.",
        "Most people water",
        "too often.",
    ]
    assert cues[0].end <= cues[1].start  # never overlapping
    assert cues[-1].end == pytest.approx(5.6)  # held a little after the last word
    assert captions.make_cues(TALK, until=5.2)[-1].end == 5.2


def test_srt_and_vtt() -> None:
    cues = captions.make_cues(TALK, max_chars=20)
    srt = captions.to_srt(cues)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:02,400\nWhy do gardens fail?\n")
    vtt = captions.to_vtt(captions.make_cues(words(("<b>&", 0, 1))))
    assert vtt == "WEBVTT\n\n00:00:00.000 --> 00:00:01.600\n&lt;b&gt;&amp;\n"


def _ass_events(ass: str) -> list[tuple[float, float, str]]:
    def t(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    out = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            parts = line.split(",", 9)
            out.append((t(parts[1]), t(parts[2]), parts[9]))
    return out


@pytest.mark.parametrize("style", sorted(captions.caption_styles()))
def test_ass_highlights_each_word_within_a_frame_and_never_early(style: str) -> None:
    s = captions.caption_style(style)
    ass = captions.to_ass(captions.make_cues(TALK, max_chars=s.max_chars), s, 1080, 1920)
    assert "PlayResX: 1080" in ass and "PlayResY: 1920" in ass
    events = _ass_events(ass)
    assert len(events) == len(TALK)
    frame = 1 / 30
    for word, (start, end, text) in zip(TALK, events, strict=True):
        assert word.start <= start < word.start + frame  # highlight starts within one frame
        assert end > start
        visible = re.sub(r"\{\\alpha&HFF&\}[^{]*\{\\alpha&H00&\}", "", text)  # hidden removed
        shown = re.sub(r"\{[^}]*\}", "", visible).split()
        highlight = captions._ass_colour(s.highlight)
        highlighted = re.search(r"\{\\c" + re.escape(highlight) + r"[^}]*\}([^{]+)\{", text)
        assert highlighted is not None
        highlighted = highlighted.group(1)
        assert highlighted.lower() == word.text.lower()
        assert shown[-1].lower() == word.text.lower()  # nothing after the spoken word is visible


def test_ass_text_cannot_inject_override_tags() -> None:
    s = captions.caption_style("bold")
    ass = captions.to_ass(captions.make_cues(words(("{\\pos(0,0)}hi", 0, 1))), s, 1080, 1920)
    assert "\\pos" not in ass


def test_caption_font_ships_with_its_licence() -> None:
    folder = captions.font_dir()
    assert (folder / "Inter-Bold.otf").stat().st_size > 100_000
    assert "OFL" in (folder / "Inter-LICENSE.txt").read_text()


# -- word snapping --------------------------------------------------------------------------


def test_snap_moves_bounds_off_words() -> None:
    m = Moment(start=0.75, end=3.2, score=1, title="t")  # starts inside "do", ends inside "Water."
    snapped = snap_to_words(m, TALK, 10)
    assert snapped is not None
    assert (snapped.start, snapped.end) == (0.72, 3.4)
    lead = snap_to_words(Moment(start=0.6, end=1.9, score=1, title="t"), TALK, 10)
    assert lead is not None and lead.start == 0.5  # never cuts into the previous word
    assert snap_to_words(Moment(start=1.9, end=2.9, score=1, title="t"), TALK, 10) is None


# -- media ----------------------------------------------------------------------------------


def test_probe_reads_real_media() -> None:
    video = probe(FIXTURES / "talk.mp4")
    assert video.has_video and video.has_audio
    assert (video.width, video.height, video.video_codec) == (640, 360, "h264")
    assert 60 < video.duration < 90
    audio = probe(FIXTURES / "talk-audio.m4a")
    assert audio.has_audio and not audio.has_video and audio.width == 0


def test_extract_audio_gives_16k_mono(tmp_path: Path) -> None:
    out = extract_audio(FIXTURES / "talk-audio.m4a", tmp_path / "a.wav")
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        seconds = w.getnframes() / w.getframerate()
    assert seconds == pytest.approx(probe(FIXTURES / "talk-audio.m4a").duration, abs=0.1)
    assert not list(tmp_path.glob("*.part*"))


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 3_000_000)
    first = fingerprint(a)
    a.write_bytes(b"x" * 2_999_999 + b"y")
    assert fingerprint(a).fingerprint != first.fingerprint
    assert first.size == 3_000_000
