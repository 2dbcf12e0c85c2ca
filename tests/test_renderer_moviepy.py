"""The moviepy renderer applies the ffmpeg renderer's plan: same streams, crop, captions, timing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from kadrio_core.errors import BadInput
from kadrio_core.media import ffmpeg_exe, probe
from kadrio_core.models import ClipPlan, Moment, OutputFormat, RenderedClip, Word
from kadrio_core.plugins import registry
from kadrio_core.reframe import ReframePlan
from kadrio_core.settings import Settings
from tests.conftest import streams
from tests.test_reframe import (
    CYRILLIC_LONG,
    _yellow,
    assert_caption_in_safe_area,
    assert_output_shows_the_planned_crop,
    frames_at,
    make_video,
    photo_overlay,
)

SMALL = OutputFormat(width=270, height=480)


def render(renderer: str, source: Path, stem: Path, start: float, end: float, *,
           words: list[Word] | None = None, style: str = "bold",
           settings: Settings | None = None) -> RenderedClip:  # fmt: skip
    plan = ClipPlan(
        index=1,
        moment=Moment(start=start, end=end, score=50, title="t"),
        words=words or [],
        media=probe(source),
        output=SMALL,
        stem=stem,
        caption_style=style,
    )
    return registry("renderer").create(renderer, settings or Settings()).render(source, plan)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data, io

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    io.imsave(str(path), data.astronaut(), check_contrast=False)
    return path


@pytest.fixture(scope="module")
def both(photo: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One moving face with a hard cut at 4 s, rendered from 1 s to 6 s by both renderers."""
    tmp = tmp_path_factory.mktemp("both")
    source = make_video(
        tmp / "moving.mp4", photo_overlay(260, "if(lt(t,4),10+30*t,370)", 50), 7, photo
    )
    words = [Word(text="Look", start=5.6, end=5.8), Word(text="here.", start=5.85, end=6.0)]
    clips = {
        name: render(name, source, tmp / name, 1.0, 6.0, words=words)
        for name in ("ffmpeg", "moviepy")
    }
    return source, clips


def test_the_same_plan_gives_the_same_streams(both) -> None:  # type: ignore[no-untyped-def]
    import av

    _, clips = both
    ff, mp = clips["ffmpeg"], clips["moviepy"]
    assert mp.renderer == "moviepy"
    assert mp.plan == ff.plan  # same reframe plan, layout and preview time
    a, b = streams(ff.mp4), streams(mp.mp4)
    assert (b.width, b.height, b.fps) == (a.width, a.height, a.fps) == (270, 480, 30)
    codecs = [(s.video_codec, s.audio_codec, s.audio_rate) for s in (a, b)]
    assert codecs[0] == codecs[1] == ("h264", "aac", 44100)
    assert b.duration == pytest.approx(a.duration, abs=0.1)
    assert b.duration == pytest.approx(5.0, abs=0.1)
    for clip in (ff, mp):
        with av.open(str(clip.mp4)) as c:
            # limited range: the jpg's full-range branch must not pull the mp4 along
            assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
            assert c.streams.video[0].frames == pytest.approx(150, abs=1)
            assert c.streams.audio[0].codec_context.channels == 1  # the source's, not stereo
    assert mp.srt.read_text() == ff.srt.read_text() and mp.vtt.read_text() == ff.vtt.read_text()
    with av.open(str(mp.jpg)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].height) == (270, 480)
    assert sorted(p.name for p in mp.mp4.parent.glob("moviepy*")) == [
        "moviepy.jpg", "moviepy.mp4", "moviepy.srt", "moviepy.vtt"
    ]  # fmt: skip


def test_the_tracked_crop_follows_the_plan(both) -> None:  # type: ignore[no-untyped-def]
    source, clips = both
    mp = clips["moviepy"]
    reframe = ReframePlan.model_validate(mp.plan["reframe"])
    assert [s.layout for s in reframe.shots] == ["track", "track"]
    assert reframe.shots[1].start == pytest.approx(3.0, abs=0.041)  # the cut, in clip time
    assert reframe.crop_at(0.2)[0] != reframe.crop_at(2.8)[0]  # the camera pans
    assert reframe.crop_at(3.05)[0] - reframe.crop_at(2.95)[0] > 250  # and jumps at the cut
    times = [0.2, 1.5, 2.8, 3.1, 4.0]
    assert_output_shows_the_planned_crop(source, mp.mp4, reframe, 1.0, times)
    # the preview is the frame written at the preview time, captions included
    preview = frames_at(mp.jpg, [0.0])[0.0].astype(int)
    at = mp.plan["preview_at"]
    frame = frames_at(mp.mp4, [at])[at].astype(int)
    assert np.abs(preview - frame).mean() < 6


def test_a_word_highlight_starts_within_one_frame(tmp_path: Path) -> None:
    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 3)
    words = [Word(text="Hello", start=1.0, end=1.4), Word(text="there.", start=1.5, end=2.0)]
    clip = render("moviepy", source, tmp_path / "clip", 0.0, 3.0, words=words)
    frames = frames_at(clip.mp4, [0.9, 29 / 30, 1.0, 31 / 30, 1.45, 1.55])
    assert _yellow(frames[0.9]) == 0 and _yellow(frames[29 / 30]) == 0  # nothing before it
    assert _yellow(frames[1.0]) > 50 and _yellow(frames[31 / 30]) > 50
    white = [int((f.min(axis=2) > 220).sum()) for f in (frames[1.45], frames[1.55])]
    assert white[1] > white[0]  # "there." is not on screen before 1.5 s


def test_cuts_are_left_out_of_picture_sound_and_captions(tmp_path: Path) -> None:
    """0-2 s dark, 2-4 s grey (cut out), 4-6 s light: the clip is dark then light, 4 s long."""
    graph = (
        "[0:v]drawbox=c=0x808080:t=fill:enable='between(t,2,4)',"
        "drawbox=c=0xE0E0E0:t=fill:enable='gte(t,4)',format=yuv420p[v]"
    )
    source = make_video(tmp_path / "bands.mp4", graph, 6)
    words = [
        Word(text=w, start=s, end=s + 0.5) for w, s in (("one.", 1), ("two.", 3), ("three.", 4.5))
    ]
    plan = ClipPlan(
        index=1,
        moment=Moment(start=0, end=6, score=50, title="t", cuts=[(2.0, 4.0)]),
        words=words,
        media=probe(source),
        output=SMALL,
        stem=tmp_path / "clip-01",
    )
    clip = registry("renderer").create("moviepy", Settings()).render(source, plan)
    s = streams(clip.mp4)
    assert s.duration == pytest.approx(4.0, abs=0.15)
    import av

    with av.open(str(clip.mp4)) as c:
        audio = c.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(4.0, abs=0.15)
    frames = frames_at(clip.mp4, [0.5, 1.9, 2.1, 2.45, 2.5, 2.5 + 1 / 30, 3.5])
    top = {t: float(f[:40].mean()) for t, f in frames.items()}  # above the captions
    assert top[0.5] < 70 and top[1.9] < 70
    assert top[2.1] > 170 and top[3.5] > 170  # straight from dark to light: grey never shown
    # "three." (4.5 s in the source) is highlighted from 2.5 s in the output, not before
    assert _yellow(frames[2.45]) == 0
    assert _yellow(frames[2.5]) > 50 and _yellow(frames[2.5 + 1 / 30]) > 50


@pytest.mark.parametrize("style", ["bold", "karaoke", "minimal"])
def test_cyrillic_and_long_words_render_inside_the_frame(tmp_path: Path, style: str) -> None:
    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 2)
    clip = render("moviepy", source, tmp_path / "clip", 0.0, 2.0, words=CYRILLIC_LONG, style=style)
    frame = frames_at(clip.mp4, [1.5])[1.5]
    assert_caption_in_safe_area(frame)


def test_no_face_gives_fit_and_no_picture_gives_a_waveform(tmp_path: Path) -> None:
    pattern = tmp_path / "pattern.mp4"
    tone = tmp_path / "tone.m4a"
    ff = [ffmpeg_exe(), "-y", "-loglevel", "error"]
    subprocess.run([*ff, "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=3", "-f", "lavfi",
                    "-i", "sine=d=3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", str(pattern)], check=True)  # fmt: skip
    louder = "volume=eval=frame:volume='if(lt(t,1.5),1,4)'"  # 1/8 full scale, then 1/2
    subprocess.run([*ff, "-f", "lavfi", "-i", "sine=f=220:d=3:sample_rate=48000",
                    "-af", louder, "-c:a", "aac", str(tone)], check=True)  # fmt: skip
    fit = render("moviepy", pattern, tmp_path / "fit", 0.5, 2.5)
    assert fit.plan["layout"] == "fit"
    frame = frames_at(fit.mp4, [1.0])[1.0]
    band = frame[480 // 2 - 30 : 480 // 2 + 30]
    assert band.std() > 40  # the sharp test pattern in the middle
    assert frame[:60].std() < band.std()  # over a blurred copy of itself

    wave = render("moviepy", tone, tmp_path / "wave", 0.0, 3.0)
    assert wave.plan["layout"] == "waveform"
    s = streams(wave.mp4)
    assert (s.width, s.height, s.audio_codec, s.audio_rate) == (270, 480, "aac", 48000)
    lit = [frames_at(wave.mp4, [t])[t] for t in (0.5, 2.5)]
    teal = [int(((f[..., 1] > 180) & (f[..., 2] > 150) & (f[..., 0] < 150)).sum()) for f in lit]
    assert teal[0] > 270 and teal[1] > 2 * teal[0]  # a waveform that grows with the sound
    assert lit[0][:100].max() < 60  # on the dark background


def invert(clip, prepared):  # type: ignore[no-untyped-def]
    """An effect for the test below: negative colours."""
    return clip.image_transform(lambda frame: 255 - frame)


def test_a_python_effect_applies_before_the_captions(tmp_path: Path) -> None:
    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 2)
    settings = Settings(providers={"moviepy": {"effects": f"{__name__}:invert"}})
    words = [Word(text="Hi", start=0.2, end=1.5)]
    clip = render("moviepy", source, tmp_path / "clip", 0.0, 2.0, words=words, settings=settings)
    frame = frames_at(clip.mp4, [1.0])[1.0]
    assert frame[:100].min() > 200  # the dark 0x202830 background, inverted
    assert _yellow(frame) > 50  # captions drawn over the effect, not inverted

    bad = Settings(providers={"moviepy": {"effects": "no_such_module_here:fx"}})
    with pytest.raises(BadInput, match="no_such_module_here"):
        render("moviepy", source, tmp_path / "bad", 0.0, 2.0, settings=bad)
    assert not list(tmp_path.glob("bad*"))


def test_without_the_moviepy_extra_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 1)
    monkeypatch.setitem(sys.modules, "moviepy", None)  # as if it were not installed
    with pytest.raises(BadInput, match=r"pip install 'kadrio\[moviepy\]'"):
        render("moviepy", source, tmp_path / "clip", 0.0, 1.0)
    assert not list(tmp_path.glob("clip*"))
