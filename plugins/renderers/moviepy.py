"""The ``moviepy`` renderer: the ``ffmpeg`` renderer's plan, composed frame by frame in Python.

It exists for developers who write custom effects in Python. Everything decided before the
pixels comes from :func:`kadrio_core.rendering.prepare`, exactly as for ``ffmpeg``: the same
caption cues and style, the same :class:`~kadrio_core.reframe.ReframePlan`, the same preview
time. What differs is how the plan is applied:

- the source span is read by moviepy (``VideoFileClip``), cut into one subclip per shot and
  joined again with ``concatenate_videoclips``; a ``track`` shot crops each frame where
  ``ReframePlan.crop_at(t)`` says, a ``fit`` shot lays the whole frame over a blurred, enlarged
  copy of itself (the ``ffmpeg`` renderer's ``fit_chain``: a 1/10-size cover crop, a 13 px box
  blur applied twice, scaled back up); the moment's cuts are then left out by mapping output
  time to clip time (``PreparedClip.timeline``);
- captions are drawn with PIL in the shipped Inter font, word by word with the same preset as
  the ASS file (sizes, colours, outline, box, upper case, the spoken word in the highlight
  colour and 12 % larger for ``pop`` styles, words not yet spoken laid out but invisible, a cue
  whose longest word is wider than the line shrunk to fit, 1-3 balanced lines). The text band
  is alpha-blended into the frame with numpy: moviepy's ``CompositeVideoClip`` does the same
  through PIL on the whole frame at about three times the cost;
- a source with no picture gets the ``ffmpeg`` renderer's waveform: the last 1/fps second of
  audio drawn as centred vertical lines, full width, over the same dark background;
- moviepy writes H.264 (yuv420p, the plan's fps, CRF and preset) to a ``.part.mp4`` that is
  renamed when complete, muxing the clip's audio, which ffmpeg cut and encoded to AAC exactly as
  the ``ffmpeg`` renderer does (moviepy's own audio path would resample in Python and always
  write stereo); the ``.jpg`` preview is the first written frame at or after
  ``prepared.preview_at``, captions included.

Custom effects: the reframed clip (output size, no captions, no audio) goes through
:meth:`MoviepyRenderer.effects` before the captions are laid over it. Subclass the renderer and
override ``effects(clip, prepared)``, or name a function in settings, called the same way::

    [providers.moviepy]
    effects = "my_package.effects:vignette"   # def vignette(clip, prepared) -> clip

The function gets a moviepy ``VideoClip`` and the :class:`~kadrio_core.rendering.PreparedClip`
(plan, cues, reframe plan) and returns a clip of the same size; its duration is set to the
clip's. This renderer pulls every decoded frame through Python (about 1.5x the time of the
``ffmpeg`` renderer and 1.7x a bare ffmpeg encode for 60 s of 1080x1920 on two cores, and about
750-780 MB peak RSS: moviepy runs a decoding and an encoding ffmpeg besides Python; measured by
``benchmarks/render_speed.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import itertools
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core import captions
from kadrio_core.errors import BadInput, ProviderError
from kadrio_core.hookspecs import hookimpl
from kadrio_core.media import run_ffmpeg
from kadrio_core.models import ClipPlan, RenderedClip
from kadrio_core.providers import Progress, ProviderOptions, Renderer
from kadrio_core.reframe import ReframeOptions, ReframePlan
from kadrio_core.rendering import PreparedClip, prepare, rendered, write_subtitles

WAVE_COLOUR = (0x5E, 0xEA, 0xD4)  # the ffmpeg renderer's WAVE_COLOUR and BACKGROUND
BACKGROUND = (0x10, 0x18, 0x20)
POP = 1.12  # the ASS preset's \fscx112\fscy112
SHADOW_ALPHA = 0xFF - 0x60  # the ASS back colour's alpha
JPEG_QUALITY = 90

Effect = Callable[[Any, PreparedClip], Any]


class MoviepyOptions(ReframeOptions):
    effects: str | None = Field(
        default=None,
        description="'module:function' applied to the reframed clip: function(clip, prepared)",
    )


class MoviepyRenderer(Renderer):
    name = "moviepy"
    description = "moviepy compositing in Python: the same plan as ffmpeg, custom effects, slower"
    Options: ClassVar[type[ProviderOptions]] = MoviepyOptions
    options: MoviepyOptions

    def render(
        self, source: Path, plan: ClipPlan, progress: Progress = lambda _: None
    ) -> RenderedClip:
        _check_installed()
        self._configured_effect()  # a misconfigured effect fails before any work
        prepared = prepare(source, plan, self.options)
        progress(0.05)
        out = plan.output
        with contextlib.ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kadrio-mp-")))
            preview = _Preview(prepared.preview_at)
            clip = self.compose(source, prepared, stack, preview)
            audio = clip_audio(source, prepared, work) if plan.media.has_audio else None
            mp4, jpg = prepared.partial("mp4"), prepared.partial("jpg")
            try:
                clip.write_videofile(
                    str(mp4),
                    fps=out.fps,
                    codec="libx264",
                    preset=out.preset,
                    audio=str(audio) if audio is not None else False,
                    audio_codec="copy",
                    # moviepy asks libx264 for yuva420p, which it does not have: ffmpeg picks
                    # yuv420p (checked by tests/test_renderer_moviepy.py)
                    ffmpeg_params=["-crf", str(out.crf), "-movflags", "+faststart"],
                    logger=_progress_logger(lambda f: progress(0.05 + 0.9 * f)),
                )
                preview.save(jpg, clip)
                mp4.replace(prepared.path("mp4"))
                jpg.replace(prepared.path("jpg"))
            finally:
                mp4.unlink(missing_ok=True)
                jpg.unlink(missing_ok=True)
        write_subtitles(prepared)
        progress(1.0)
        return rendered(prepared, self.name)

    def compose(
        self,
        source: Path,
        prepared: PreparedClip,
        stack: contextlib.ExitStack,
        preview: _Preview | None = None,
    ) -> Any:
        """The whole picture as a moviepy clip: reframed video, effects, captions; no audio."""
        out = prepared.plan.output
        size = (out.width, out.height)
        if prepared.reframe is None:
            clip = waveform_clip(source, prepared, stack)
        else:
            clip = reframed_clip(source, prepared, prepared.reframe, stack)
        clip = self.effects(clip, prepared)
        if tuple(clip.size) != size:
            raise ProviderError(
                f"moviepy effects returned a {clip.size[0]}x{clip.size[1]} clip; "
                f"the output is {size[0]}x{size[1]}"
            )
        clip = clip.with_duration(prepared.duration).without_mask()
        painter = CaptionPainter(prepared.cues, prepared.style, *size)

        def finish(get_frame, t):  # type: ignore[no-untyped-def]
            frame = painter.paint(get_frame(t), t)
            if preview is not None:
                preview.offer(frame, t)
            return frame

        return clip.transform(finish, apply_to=[])

    def effects(self, clip: Any, prepared: PreparedClip) -> Any:
        """Hook for custom effects: return ``clip`` (a moviepy VideoClip) changed or as is.

        Called with the reframed clip at the output size, before captions are laid over it.
        The default applies the function named by the ``effects`` option, if any.
        """
        effect = self._configured_effect()
        return clip if effect is None else effect(clip, prepared)

    def _configured_effect(self) -> Effect | None:
        name = self.options.effects
        if not name:
            return None
        module_name, _, attr = name.partition(":")
        if not module_name or not attr:
            raise BadInput(f"moviepy effects {name!r}: expected 'module:function'")
        try:
            function = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise BadInput(f"moviepy effects {name!r}: {exc}") from None
        if not callable(function):
            raise BadInput(f"moviepy effects {name!r} is not callable")
        return function  # type: ignore[no-any-return]


# -- picture -------------------------------------------------------------------------------


def reframed_clip(
    source: Path, prepared: PreparedClip, reframe: ReframePlan, stack: contextlib.ExitStack
) -> Any:
    """The source span cut per shot, each shot cropped (track) or fitted (fit), joined again.

    The shots are in clip time; the moment's cuts are left out at the end (output time).
    """
    from moviepy import VideoFileClip, concatenate_videoclips

    out = prepared.plan.output
    size = (out.width, out.height)
    video = stack.enter_context(VideoFileClip(str(source), audio=False))
    start = prepared.plan.moment.start
    span = video.subclipped(start, min(start + prepared.timeline.length, video.duration))
    shots = []
    for shot in reframe.shots:
        end = min(shot.end, span.duration)
        if end <= shot.start:
            continue
        part = span.subclipped(shot.start, end)
        if shot.layout == "fit":
            shots.append(part.image_transform(lambda frame: fit_frame(frame, size)))
        else:
            offset = shot.start

            def track(get_frame, t, offset=offset):  # type: ignore[no-untyped-def]
                return track_frame(get_frame(t), reframe, reframe.crop_at(t + offset), size)

            shots.append(part.transform(track))
    clip = shots[0] if len(shots) == 1 else concatenate_videoclips(shots, method="chain")
    timeline = prepared.timeline
    if timeline.has_cuts:
        clip = clip.time_transform(timeline.to_clip).with_duration(prepared.duration)
    return clip.with_fps(out.fps)


def track_frame(
    frame: Any, reframe: ReframePlan, corner: tuple[int, int], size: tuple[int, int]
) -> Any:
    import cv2

    x, y = corner
    crop = frame[y : y + reframe.crop_height, x : x + reframe.crop_width]
    return _resize(cv2, crop, size)


def fit_frame(frame: Any, size: tuple[int, int]) -> Any:
    """The whole frame scaled into ``size`` over a blurred, enlarged copy of itself."""
    import cv2

    w, h = size
    sh, sw = frame.shape[:2]
    bw, bh = _even(w / 10), _even(h / 10)
    k = max(bw / sw, bh / sh)
    cw, ch = max(bw, round(sw * k)), max(bh, round(sh * k))
    small = cv2.resize(frame, (cw, ch), interpolation=cv2.INTER_AREA)
    x, y = (cw - bw) // 2, (ch - bh) // 2
    small = small[y : y + bh, x : x + bw]
    for _ in range(2):  # ffmpeg's boxblur=6:2: radius 6, twice
        small = cv2.blur(small, (13, 13))
    canvas = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    k = min(w / sw, h / sh)
    fw, fh = _even(sw * k), _even(sh * k)
    front = _resize(cv2, frame, (fw, fh))
    x, y = (w - fw) // 2, (h - fh) // 2
    canvas[y : y + fh, x : x + fw] = front
    return canvas


def _resize(cv2: Any, image: Any, size: tuple[int, int]) -> Any:
    shrinking = size[0] < image.shape[1]
    mode = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=mode)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def waveform_clip(source: Path, prepared: PreparedClip, stack: contextlib.ExitStack) -> Any:
    """The ffmpeg renderer's waveform: each frame shows the last 1/fps s of audio, full width."""
    import numpy as np
    from moviepy import AudioFileClip, VideoClip

    out = prepared.plan.output
    w, h = out.width, out.height
    rate = 16_000
    audio = stack.enter_context(AudioFileClip(str(source), fps=rate))
    start = prepared.plan.moment.start
    to_clip = prepared.timeline.to_clip
    wave_h = _even(h / 4)
    top = (h - wave_h) // 2
    centre = top + wave_h / 2
    rows = np.arange(h, dtype=np.float32)[:, None]
    window = np.arange(max(2, round(rate / out.fps))) / rate
    background = np.empty((h, w, 3), dtype=np.uint8)
    background[:] = BACKGROUND

    def frame_function(t: float) -> Any:
        times = np.minimum(start + to_clip(t) + window, audio.duration - 1 / rate)
        chunk = np.abs(audio.get_frame(times)).max(axis=1)
        levels = np.interp(np.linspace(0, chunk.size - 1, w), np.arange(chunk.size), chunk)
        reach = np.maximum(levels * wave_h / 2, 0.5)[None, :]
        lit = np.abs(rows - centre) <= reach
        frame = background.copy()
        frame[lit] = WAVE_COLOUR
        return frame

    return VideoClip(frame_function, duration=prepared.duration).with_fps(out.fps)


def clip_audio(source: Path, prepared: PreparedClip, work: Path) -> Path:
    """The clip's audio, cuts left out, encoded by ffmpeg as the ffmpeg renderer encodes it.

    moviepy's own audio path would resample through Python and always write two channels.
    """
    dest = work / "audio.m4a"
    m, out, timeline = prepared.plan.moment, prepared.plan.output, prepared.timeline
    args = ["-ss", f"{m.start:.3f}", "-t", f"{timeline.length:.3f}", "-i", f"file:{source}"]
    args += ["-map", "0:a:0", "-vn"]
    if timeline.has_cuts:
        args += ["-af", f"aselect='{timeline.select_expression()}',asetpts=N/SR/TB"]
    args += ["-c:a", "aac", "-b:a", out.audio_bitrate, "-f", "mp4", f"file:{dest}"]
    run_ffmpeg(args)
    return dest


# -- captions ------------------------------------------------------------------------------


class CaptionPainter:
    """Word-by-word captions drawn with PIL and blended into frames.

    Follows :func:`kadrio_core.captions.to_ass`: a cue is laid out once with all its words, so
    the line never jumps as it fills; word ``i`` is highlighted from its start until the next
    word starts (or the cue ends) and the words after it are not drawn. Only the latest word
    state is kept in memory.
    """

    def __init__(self, cues: list[captions.Cue], style: captions.CaptionStyle, w: int, h: int):
        self.cues = cues
        self.style = style
        self.width, self.height = w, h
        self.starts = [c.start for c in cues]
        self._state: tuple[int, int] | None = None
        self._band: tuple[int, int, Any, Any] | None = None  # x, y, rgb, alpha (uint16)

    def state_at(self, t: float) -> tuple[int, int] | None:
        """(cue index, spoken word index) on screen at clip time ``t``, or None."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0 or t >= self.cues[i].end:
            return None
        words = self.cues[i].words
        j = max(bisect.bisect_right([w.start for w in words], t) - 1, 0)
        # as in the ASS file: a word shown for less than 10 ms is skipped
        while j > 0 and self._until(i, j) - words[j].start < 0.01:
            j -= 1
        return i, j

    def _until(self, i: int, j: int) -> float:
        words = self.cues[i].words
        return words[j + 1].start if j + 1 < len(words) else self.cues[i].end

    def paint(self, frame: Any, t: float) -> Any:
        import numpy as np

        state = self.state_at(t)
        if state is None:
            return frame
        if state != self._state:
            self._band = self._draw(*state)
            self._state = state
        assert self._band is not None
        x, y, rgb, alpha = self._band
        frame = np.array(frame, dtype=np.uint8, copy=True)
        region = frame[y : y + alpha.shape[0], x : x + alpha.shape[1]]
        blended = (region * (255 - alpha) + rgb * alpha + 127) // 255
        region[:] = blended.astype(np.uint8)
        return frame

    @cached_property
    def _font_path(self) -> str:
        return str(captions.font_dir() / "Inter-Bold.otf")

    @cached_property
    def _em_per_line(self) -> float:
        from PIL import ImageFont

        ascent, descent = ImageFont.truetype(self._font_path, 1000).getmetrics()
        return 1000 / (ascent + descent)

    def _font(self, size: float) -> Any:
        """Inter at an ASS font size: libass makes ascent + descent (not the em) that tall."""
        from PIL import ImageFont

        return ImageFont.truetype(self._font_path, max(round(size * self._em_per_line), 4))

    def _layout(self, i: int) -> tuple[Any, Any, list[str], list[tuple[int, int, int]]]:
        """Fonts (normal, pop) and, per word, its text and (x, baseline, width) in the frame."""
        style = self.style
        words = [w.text.upper() if style.uppercase else w.text for w in self.cues[i].words]
        size = round(style.font_size * self.height)
        margin_lr = round(self.width * 0.1)
        usable = self.width - 2 * margin_lr
        # a word wider than the line cannot wrap: shrink this cue, by the ASS file's estimate
        # (so both renderers pick the same size), then further if the real glyphs still overflow
        char_width = captions.CHAR_WIDTH_UPPER if style.uppercase else captions.CHAR_WIDTH
        estimate = max(len(w) for w in words) * size * char_width
        if estimate > usable:
            size = int(size * usable / estimate)
        font = self._font(size)
        widest = max(font.getlength(w) for w in words)
        if widest > usable:
            size = int(size * usable / widest)
            font = self._font(size)
        widths = [font.getlength(w) for w in words]
        space = font.getlength(" ")
        lines = _balanced_lines(widths, space, usable)
        ascent, descent = font.getmetrics()
        line_h = ascent + descent
        block_h = line_h * len(lines)
        margin_v = round(style.margin_bottom * self.height)
        vertical = (style.alignment - 1) // 3  # 0 bottom, 1 middle, 2 top
        if vertical == 0:
            top = self.height - margin_v - block_h
        elif vertical == 1:
            top = (self.height - block_h) // 2
        else:
            top = margin_v
        placed = []
        for n, line in enumerate(lines):
            line_w = sum(widths[k] for k in line) + space * (len(line) - 1)
            horizontal = style.alignment % 3  # 1 left, 2 centre, 0 right
            if horizontal == 1:
                x = margin_lr
            elif horizontal == 2:
                x = (self.width - line_w) / 2
            else:
                x = self.width - margin_lr - line_w
            baseline = top + n * line_h + ascent
            for k in line:
                placed.append((round(x), baseline, round(widths[k])))
                x += widths[k] + space
        pop = self._font(round(size * POP)) if style.pop else font
        return font, pop, words, placed

    def _draw(self, i: int, spoken: int) -> tuple[int, int, Any, Any]:
        import numpy as np
        from PIL import Image, ImageDraw

        style = self.style
        font, pop, words, placed = self._layout(i)
        outline = round(style.outline_width * self.height)
        shadow = round(style.shadow * self.height)
        primary, highlight, edge = (
            _rgb(c) for c in (style.primary, style.highlight, style.outline)
        )
        image = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        ascent, descent = font.getmetrics()
        layers = [(shadow, (*edge, SHADOW_ALPHA))] if shadow else []
        layers.append((0, None))
        for offset, colour in layers:
            layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(layer)
            if style.box:  # one box per line, around the words already spoken
                by_line = itertools.groupby(range(spoken + 1), key=lambda k: placed[k][1])
                for baseline, ks in by_line:
                    ks = list(ks)
                    left = placed[ks[0]][0] - outline + offset
                    right = placed[ks[-1]][0] + placed[ks[-1]][2] + outline + offset
                    box = (left, baseline - ascent - outline + offset, right,
                           baseline + descent + outline + offset)  # fmt: skip
                    draw.rectangle(box, fill=colour or (*edge, 255))
            for k in range(spoken + 1):
                x, baseline, width = placed[k]
                fill = colour or (*(highlight if k == spoken else primary), 255)
                use = pop if k == spoken else font
                centre = x + width / 2 + offset
                draw.text(
                    (centre, baseline + offset),
                    words[k],
                    font=use,
                    fill=fill,
                    anchor="ms",
                    stroke_width=0 if style.box else outline,
                    stroke_fill=colour or (*edge, 255),
                )
            image = Image.alpha_composite(image, layer)
        left, upper, right, lower = image.getbbox() or (0, 0, 1, 1)
        band = np.asarray(image.crop((left, upper, right, lower)), dtype=np.uint16)
        return left, upper, band[..., :3], band[..., 3:4]


def _balanced_lines(widths: list[float], space: float, usable: float) -> list[list[int]]:
    """Words split into the fewest lines that fit, then balanced (libass WrapStyle 0)."""
    count = 1
    line = 0.0
    for k, w in enumerate(widths):
        if k and line + space + w > usable:
            count += 1
            line = w
        else:
            line = w if k == 0 else line + space + w
    n = len(widths)
    best: list[list[int]] | None = None
    best_widest = float("inf")
    for cuts in itertools.combinations(range(1, n), count - 1):
        bounds = [0, *cuts, n]
        lines = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
        widest = max(sum(widths[k] for k in ln) + space * (len(ln) - 1) for ln in lines)
        if widest < best_widest:
            best, best_widest = lines, widest
    return best or [list(range(n))]


def _rgb(hex_rgb: str) -> tuple[int, int, int]:
    value = hex_rgb.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


# -- plumbing ------------------------------------------------------------------------------


def _check_installed() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("moviepy", "PIL") if find_spec(name) is None]
    if missing:
        raise BadInput(
            f"the moviepy renderer needs the moviepy extra ({', '.join(missing)} missing): "
            "pip install 'kadrio[moviepy]'"
        )


class _Preview:
    """Keeps the first frame written at or after ``at`` and saves it as the preview jpg."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.frame: Any = None
        self.t: float | None = None

    def offer(self, frame: Any, t: float) -> None:
        # moviepy also asks for frames outside the write loop (t=0 to learn the size): keep
        # the earliest frame at or after the preview time
        if t >= self.at - 1e-6 and (self.t is None or t < self.t):
            self.frame, self.t = frame, t

    def save(self, path: Path, clip: Any) -> None:
        from PIL import Image

        frame = self.frame if self.frame is not None else clip.get_frame(self.at)
        Image.fromarray(frame).save(path, format="JPEG", quality=JPEG_QUALITY)


def _progress_logger(progress: Progress) -> Any:
    from proglog import ProgressBarLogger

    class Logger(ProgressBarLogger):  # type: ignore[misc]
        def bars_callback(self, bar, attr, value, old_value=None):  # type: ignore[no-untyped-def]
            total = self.bars[bar].get("total")
            if bar == "frame_index" and attr == "index" and total:
                progress(min(1.0, value / total))

    return Logger()


@hookimpl
def register_renderers(register):  # type: ignore[no-untyped-def]
    register(MoviepyRenderer)
