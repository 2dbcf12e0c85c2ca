"""The default renderer: one ffmpeg process per clip, one filter graph, no frames through Python.

The graph crops the source to the output aspect (a centre crop; sources with no picture get a
waveform over a dark background), scales to the output size, burns in word-highlight captions
with libass using the font shipped with Kadrio, and writes the mp4 and the preview jpg in the same
pass. The .srt and .vtt files are written from the same caption cues.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from kadrio_core import captions
from kadrio_core.hookspecs import hookimpl
from kadrio_core.media import run_ffmpeg
from kadrio_core.models import ClipPlan, RenderedClip
from kadrio_core.providers import Progress, ProviderOptions, Renderer

WAVE_COLOUR = "0x5EEAD4"
BACKGROUND = "0x101820"


def even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def centre_crop(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """The largest box of the output's aspect ratio centred in the source: (x, y, w, h)."""
    target = out_w / out_h
    if src_w / src_h > target:
        w, h = even(src_h * target), even(src_h)
    else:
        w, h = even(src_w), even(src_w / target)
    return (src_w - w) // 2, (src_h - h) // 2, w, h


def preview_time(cues: list[captions.Cue], duration: float) -> float:
    """A moment with a caption on screen, early in the clip."""
    if cues:
        first = cues[0]
        return min(first.words[-1].start + 0.05, max(duration - 0.1, 0.0))
    return min(1.0, duration / 2)


def _plain_tmp() -> str:
    tmp = tempfile.gettempdir()
    return tmp if all(ch.isalnum() or ch in "/._-" for ch in tmp) else "/tmp"


class FfmpegRenderer(Renderer):
    name = "ffmpeg"
    description = "one ffmpeg filter-graph pass per clip (crop, scale, libass captions, x264)"
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions

    def render(
        self, source: Path, plan: ClipPlan, progress: Progress = lambda _: None
    ) -> RenderedClip:
        out = plan.output
        m = plan.moment
        duration = m.end - m.start
        style = captions.caption_style(plan.caption_style)
        words = captions.clip_words(plan.words, m.start, m.end)
        cues = captions.make_cues(words, max_chars=style.max_chars, until=duration)
        stem = plan.stem
        final = {ext: stem.with_suffix(f".{ext}") for ext in ("mp4", "srt", "vtt", "jpg")}
        partial = {ext: stem.with_name(f"{stem.name}.part.{ext}") for ext in ("mp4", "jpg")}

        # a plain folder name: the path goes into the filter graph unescaped
        with tempfile.TemporaryDirectory(prefix="kadrio-render-", dir=_plain_tmp()) as tmp:
            work = Path(tmp)
            (work / "captions.ass").write_text(
                captions.to_ass(cues, style, out.width, out.height), encoding="utf-8"
            )
            for font in captions.font_dir().glob("*.otf"):
                shutil.copy(font, work / font.name)
            graph, plan_data = self._graph(plan, work, preview_time(cues, duration))
            args = ["-ss", f"{m.start:.3f}", "-t", f"{duration:.3f}", "-i", f"file:{source}"]
            args += ["-filter_complex", graph]
            args += ["-map", "[vout]"]
            if plan.media.has_audio:
                args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", out.audio_bitrate]
            args += ["-c:v", "libx264", "-preset", out.preset, "-crf", str(out.crf)]
            args += ["-pix_fmt", "yuv420p", "-r", f"{out.fps:g}", "-movflags", "+faststart"]
            args += ["-f", "mp4", f"file:{partial['mp4']}"]
            args += ["-map", "[vprev]", "-frames:v", "1", "-q:v", "3", "-update", "1"]
            args += ["-f", "image2", f"file:{partial['jpg']}"]
            try:
                run_ffmpeg(args, duration=duration, progress=progress)
                partial["mp4"].replace(final["mp4"])
                partial["jpg"].replace(final["jpg"])
            finally:
                for path in partial.values():
                    path.unlink(missing_ok=True)
        final["srt"].write_text(captions.to_srt(cues), encoding="utf-8")
        final["vtt"].write_text(captions.to_vtt(cues), encoding="utf-8")
        progress(1.0)
        return RenderedClip(
            index=plan.index,
            mp4=final["mp4"],
            srt=final["srt"],
            vtt=final["vtt"],
            jpg=final["jpg"],
            start=m.start,
            end=m.end,
            width=out.width,
            height=out.height,
            renderer=self.name,
            plan=plan_data,
        )

    def _graph(
        self, plan: ClipPlan, work: Path, preview_at: float
    ) -> tuple[str, dict[str, object]]:
        out = plan.output
        size = f"{out.width}x{out.height}"
        subs = f"ass=filename='{work / 'captions.ass'}':fontsdir='{work}'"
        tail = (
            f"fps={out.fps:g},format=yuv420p,{subs},split=2[vout][vpre];"
            f"[vpre]select='gte(t,{preview_at:.3f})'[vprev]"
        )
        media = plan.media
        if not media.has_video:
            wave_h = even(out.height / 4)
            graph = (
                f"color=c={BACKGROUND}:s={size}:r={out.fps:g}[bg];"
                f"[0:a:0]showwaves=s={out.width}x{wave_h}:mode=cline:rate={out.fps:g}"
                f":colors={WAVE_COLOUR},format=yuva420p[wave];"
                f"[bg][wave]overlay=0:(H-h)/2:shortest=1,{tail}"
            )
            return graph, {"layout": "waveform"}
        x, y, w, h = centre_crop(media.width, media.height, out.width, out.height)
        graph = f"[0:v:0]crop={w}:{h}:{x}:{y},scale={size}:flags=bicubic,setsar=1,{tail}"
        return graph, {"layout": "centre-crop", "crop": [x, y, w, h]}


@hookimpl
def register_renderers(register):  # type: ignore[no-untyped-def]
    register(FfmpegRenderer)
