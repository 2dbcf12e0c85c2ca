"""Reframing and captions on real rendered video: tracking, cuts, fallbacks, timing, scripts."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kadrio_core.media import ffmpeg_exe, probe
from kadrio_core.models import ClipPlan, Moment, OutputFormat, Word
from kadrio_core.plugins import registry
from kadrio_core.reframe import ReframeOptions, ReframePlan, analyse
from kadrio_core.settings import Settings

PHOTO_FACE = (177, 66, 95, 95)  # the face in skimage's astronaut.png (512x512), x y w h


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data, io

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    io.imsave(str(path), data.astronaut(), check_contrast=False)
    return path


def make_video(out: Path, graph: str, duration: float, photo: Path | None = None) -> Path:
    inputs = ["-f", "lavfi", "-i", f"color=c=0x202830:s=640x360:r=25:d={duration}"]
    if photo is not None:
        inputs += ["-loop", "1", "-framerate", "25", "-i", str(photo)]
    inputs += ["-f", "lavfi", "-i", f"sine=f=220:d={duration}"]
    audio = "2:a" if photo is not None else "1:a"
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", *inputs, "-filter_complex", graph,
         "-map", "[v]", "-map", audio, "-t", str(duration), "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)],
        check=True,
    )  # fmt: skip
    return out


def photo_overlay(size: int, x_expr: str, y: int, extra: str = "") -> str:
    return (
        f"[1:v]scale={size}:{size},setsar=1{extra}[p];"
        f"[0:v][p]overlay=x='{x_expr}':y={y}:eval=frame:shortest=1,format=yuv420p[v]"
    )


def render(source: Path, tmp: Path, start: float, end: float, *, words: list[Word] | None = None,
           output: OutputFormat | None = None, style: str = "bold", layout: str = "auto"):  # type: ignore[no-untyped-def]  # fmt: skip
    renderer = registry("renderer").create("ffmpeg", Settings())
    plan = ClipPlan(
        index=1,
        moment=Moment(start=start, end=end, score=50, title="t"),
        words=words or [],
        media=probe(source),
        output=output or OutputFormat(width=270, height=480),
        stem=tmp / "clip-01",
        caption_style=style,
        layout=layout,  # type: ignore[arg-type]
    )
    return renderer.render(source, plan)


def frames_at(path: Path, times: list[float]) -> dict[float, np.ndarray]:
    """RGB frames nearest to each time (decoded with PyAV)."""
    import av

    wanted = sorted(times)
    out: dict[float, np.ndarray] = {}
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.video[0]):
            t = float(frame.pts * frame.time_base)
            while wanted and t >= wanted[0] - 1e-3:
                out[wanted.pop(0)] = frame.to_ndarray(format="rgb24")
            if not wanted:
                break
    return out


def assert_output_shows_the_planned_crop(
    source: Path, output: Path, reframe: ReframePlan, start: float, times: list[float]
) -> None:
    """The pixels of the clip are the source cropped where the plan says (within a frame)."""
    import cv2

    src = frames_at(source, [start + t for t in times])
    out = frames_at(output, times)
    for t in times:
        x, y = reframe.crop_at(t)
        crop = src[start + t][y : y + reframe.crop_height, x : x + reframe.crop_width]
        h, w = out[t].shape[:2]
        expected = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA).astype(int)
        error = np.abs(expected - out[t].astype(int)).mean()
        assert error < 14, f"at {t:.2f}s the output differs from the planned crop ({error:.1f})"


def test_a_moving_face_stays_in_the_crop(photo: Path, tmp_path: Path) -> None:
    size, y = 260, 50
    source = make_video(tmp_path / "moving.mp4", photo_overlay(size, "20+36*t", y), 10, photo)
    clip = render(source, tmp_path, 0.0, 10.0)
    reframe = ReframePlan.model_validate(clip.plan["reframe"])
    assert clip.plan["layout"] == "track" and len(reframe.shots) == 1
    k = size / 512
    fx, fy, fw, fh = (v * k for v in PHOTO_FACE)
    times = [i / 10 for i in range(100)]
    inside = 0
    for t in times:
        x, cy = reframe.crop_at(t)
        face_left = 20 + 36 * t + fx
        if x <= face_left and face_left + fw <= x + reframe.crop_width:
            assert cy <= y + fy and y + fy + fh <= cy + reframe.crop_height
            inside += 1
    assert inside / len(times) >= 0.95, f"face inside the crop in {inside}/{len(times)} frames"
    assert_output_shows_the_planned_crop(source, clip.mp4, reframe, 0.0, [0.5, 3.0, 6.0, 9.0])
    # the camera pans smoothly: never more than the bounded speed between two frames
    xs = [reframe.crop_at(i / 30)[0] for i in range(300)]
    assert max(abs(a - b) for a, b in itertools.pairwise(xs)) <= 0.5 * 202 / 30 + 1


def test_a_hard_cut_makes_the_camera_jump(photo: Path, tmp_path: Path) -> None:
    source = make_video(
        tmp_path / "cut.mp4", photo_overlay(260, "if(lt(t,4),10,370)", 50), 8, photo
    )
    clip = render(source, tmp_path, 0.0, 8.0)
    reframe = ReframePlan.model_validate(clip.plan["reframe"])
    assert [s.layout for s in reframe.shots] == ["track", "track"]
    assert reframe.shots[1].start == pytest.approx(4.0, abs=0.041)
    before, after = reframe.crop_at(3.95)[0], reframe.crop_at(4.05)[0]
    assert after - before > 250  # a jump, not a pan
    assert reframe.crop_at(4.05) == reframe.crop_at(6.0)  # already in place right after the cut
    assert_output_shows_the_planned_crop(source, clip.mp4, reframe, 0.0, [3.8, 4.1, 7.0])


def test_a_clip_decoded_in_parts_finds_what_one_decoder_finds(photo: Path, tmp_path: Path) -> None:
    # 22 s from 2 s on: two parts of 11 s with two decoders; the second cut is at the boundary
    x = "if(lt(t,6),10,if(lt(t,13),370,if(lt(t,18),60,330)))"
    source = make_video(tmp_path / "long.mp4", photo_overlay(260, x, 50), 24, photo)
    media = probe(source)
    one = analyse(source, media, 2.0, 22.0, ReframeOptions(decoders=1))
    two = analyse(source, media, 2.0, 22.0, ReframeOptions(decoders=2))
    assert one.cuts == pytest.approx([4.0, 11.0, 16.0], abs=0.041)
    assert two.cuts == one.cuts
    assert [s.t for s in two.samples] == [s.t for s in one.samples]
    assert len(two.samples) == len(range(0, 22 * 25, 6))  # every 6th frame: 4 a second
    with_face = [s for s in two.samples if len(s.faces) == 1]
    assert len(with_face) >= 0.95 * len(two.samples)
    for a, b in zip(one.samples, two.samples, strict=True):
        if a.faces and b.faces:
            assert abs(a.faces[0][0] - b.faces[0][0]) < 0.2 * a.faces[0][2], a.t


def test_no_face_falls_back_to_fit(tmp_path: Path) -> None:
    source = tmp_path / "pattern.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=s=640x360:r=25:d=4", "-f", "lavfi", "-i", "sine=d=4", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(source)],
        check=True,
    )  # fmt: skip
    clip = render(source, tmp_path, 0.5, 3.5)
    assert clip.plan["layout"] == "fit"
    assert clip.plan["reframe"]["shots"][0]["reason"] == "no face"
    frame = frames_at(clip.mp4, [1.0])[1.0]
    # the whole 16:9 frame sits in the middle band, over a blurred copy above and below
    band = frame[480 // 2 - 30 : 480 // 2 + 30]
    assert band.std() > 40  # the sharp test pattern
    assert frame[:60].std() < band.std()  # blurred background


def test_two_faces_follow_the_one_who_speaks(photo: Path, tmp_path: Path) -> None:
    # the right face's lips move (its mouth region shifts down and back) while the audio plays
    k = 220 / 512
    mx, my = round(200 * k), round(138 * k)
    graph = (
        "[1:v]scale=220:220,setsar=1,split=3[a][b][m];"
        f"[m]crop=26:10:{mx}:{my}[mouth];"
        f"[b][mouth]overlay=x={mx}:y={my}+4:enable='lt(mod(t,0.4),0.2)'[b2];"
        "[0:v][a]overlay=x=60:y=70[l];[l][b2]overlay=x=360:y=70:shortest=1,format=yuv420p[v]"
    )
    source = make_video(tmp_path / "two.mp4", graph, 6, photo)
    clip = render(source, tmp_path, 0.0, 6.0)
    reframe = ReframePlan.model_validate(clip.plan["reframe"])
    (shot,) = reframe.shots
    assert shot.faces == 2 and shot.layout == "track", shot.reason
    assert "right" in shot.reason
    assert reframe.crop_at(3.0)[0] > 300

    quiet = make_video(
        tmp_path / "two-still.mp4",
        "[1:v]scale=220:220,setsar=1,split=2[a][b];"
        "[0:v][a]overlay=x=60:y=70[l];[l][b]overlay=x=360:y=70:shortest=1,format=yuv420p[v]",
        6,
        photo,
    )
    clip = render(quiet, tmp_path, 0.0, 6.0)
    assert clip.plan["layout"] == "fit"
    assert clip.plan["reframe"]["shots"][0]["reason"] == "no clear speaker"


CYRILLIC_LONG = [
    Word(text="Привет,", start=0.1, end=0.4),
    Word(text="достопримечательности!", start=0.5, end=1.2),
]


def assert_caption_in_safe_area(frame: np.ndarray) -> None:
    """A 270x480 frame of a dark picture shows caption glyphs, low, inside the edges."""
    bright = frame.max(axis=2) > 180
    assert bright[: 480 * 2 // 3].sum() < bright.sum() // 10  # the text is in the lower part
    assert bright.sum() > 150  # glyphs were drawn on a dark, empty frame
    columns = np.where(bright.any(axis=0))[0]
    assert columns.min() > 3 and columns.max() < 270 - 4  # the long word was shrunk to fit
    assert bright[-480 // 6 :].sum() == 0  # clear of the bottom controls


def _yellow(frame: np.ndarray) -> int:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g > 160) & (b < 90)).sum())


def test_word_highlight_starts_within_one_frame(tmp_path: Path) -> None:
    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 3)
    words = [Word(text="Hello", start=1.0, end=1.4), Word(text="there.", start=1.5, end=2.0)]
    clip = render(source, tmp_path, 0.0, 3.0, words=words)
    frames = frames_at(clip.mp4, [0.9, 29 / 30, 31 / 30, 1.45, 1.55])
    assert _yellow(frames[0.9]) == 0 and _yellow(frames[29 / 30]) == 0  # nothing before it
    assert _yellow(frames[31 / 30]) > 50  # "HELLO" highlighted one frame after 1.0 s
    # "there." is not on screen before 1.5 s: the white pixels grow when it appears
    white = [int((f.min(axis=2) > 220).sum()) for f in (frames[1.45], frames[1.55])]
    assert white[1] > white[0]


@pytest.mark.parametrize("style", ["bold", "karaoke", "minimal"])
def test_cyrillic_and_long_words_render_inside_the_frame(tmp_path: Path, style: str) -> None:
    source = make_video(tmp_path / "plain.mp4", "[0:v]format=yuv420p[v]", 2)
    clip = render(source, tmp_path, 0.0, 2.0, words=CYRILLIC_LONG, style=style)
    frame = frames_at(clip.mp4, [1.5])[1.5]
    assert_caption_in_safe_area(frame)


@pytest.mark.parametrize(
    ("aspect", "size"),
    [("9:16", (1080, 1920)), ("1:1", (1080, 1080)), ("4:5", (1080, 1350)), ("16:9", (1920, 1080))],
)
def test_every_aspect_ratio_gives_its_frame_size(
    photo: Path, tmp_path: Path, aspect: str, size: tuple[int, int]
) -> None:
    source = make_video(tmp_path / "still.mp4", photo_overlay(200, "100", 80), 1.5, photo)
    clip = render(source, tmp_path, 0.0, 1.0, output=OutputFormat(aspect=aspect))  # type: ignore[arg-type]
    import av

    with av.open(str(clip.mp4)) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == size
    with av.open(str(clip.jpg)) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == size


def test_cuts_leave_spans_out_of_picture_sound_and_captions(tmp_path: Path) -> None:
    """0-2 s dark, 2-4 s grey (cut out), 4-6 s light: the clip is dark then light, 4 s long."""
    graph = (
        "[0:v]drawbox=c=0x808080:t=fill:enable='between(t,2,4)',"
        "drawbox=c=0xE0E0E0:t=fill:enable='gte(t,4)',format=yuv420p[v]"
    )
    source = make_video(tmp_path / "bands.mp4", graph, 6)
    renderer = registry("renderer").create("ffmpeg", Settings())
    words = [
        Word(text="one.", start=1.0, end=1.5),
        Word(text="two.", start=3.0, end=3.5),
        Word(text="three.", start=4.5, end=5.0),
    ]
    plan = ClipPlan(
        index=1,
        moment=Moment(start=0, end=6, score=50, title="t", cuts=[(2.0, 4.0)]),
        words=words,
        media=probe(source),
        output=OutputFormat(width=270, height=480),
        stem=tmp_path / "clip-01",
        caption_style="minimal",
    )
    clip = renderer.render(source, plan)
    import av

    with av.open(str(clip.mp4)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=0.15)
        audio = c.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(4.0, abs=0.15)
    frames = frames_at(clip.mp4, [0.5, 1.9, 2.1, 3.5])
    top = {t: float(f[:40].mean()) for t, f in frames.items()}  # above the captions
    assert top[0.5] < 70 and top[1.9] < 70
    assert top[2.1] > 170 and top[3.5] > 170  # straight from dark to light: grey never shown
    srt = clip.srt.read_text()
    assert "two." not in srt
    assert "00:00:01,000 --> " in srt and "00:00:02,500 --> " in srt  # "three." moved up by 2 s
