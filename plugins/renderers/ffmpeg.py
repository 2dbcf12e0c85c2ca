"""The default renderer: one ffmpeg process per clip, one filter graph, no frames through Python.

The graph applies the reframe plan (a crop moved by ``sendcmd`` along the camera path, or the
whole frame over a blurred copy of itself, switched per shot), scales to the output size, burns
in word-highlight captions with libass using the font shipped with Kadrio, and writes the mp4 and
the preview jpg in the same pass. Sources with no picture get a waveform over a dark background.
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
from kadrio_core.reframe import ReframeOptions, ReframePlan
from kadrio_core.rendering import PreparedClip, Timeline, prepare, rendered, write_subtitles

WAVE_COLOUR = "0x5EEAD4"
BACKGROUND = "0x101820"


def even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _plain_tmp() -> str:
    tmp = tempfile.gettempdir()
    return tmp if all(ch.isalnum() or ch in "/._-" for ch in tmp) else "/tmp"


def camera_commands(reframe: ReframePlan, timeline: Timeline, fps: float) -> str:
    """sendcmd lines that move the crop at every output frame where its position changes.

    The lines are in output time; the plan is in clip time (they differ where cuts are).
    """
    lines = []
    last = None
    frames = int(timeline.duration * fps) + 1
    for k in range(frames):
        t = timeline.to_clip(k / fps)
        if reframe.shot_at(t).layout != "track":
            continue
        position = reframe.crop_at(t)
        if position != last:
            x, y = position
            lines.append(f"{k / fps:.4f} crop@cam x {x}, crop@cam y {y};")
            last = position
    return "\n".join(lines) + "\n"


def fit_chain(width: int, height: int) -> str:
    """The whole frame scaled into the output over a blurred, enlarged copy of itself."""
    bw, bh = even(width / 10), even(height / 10)
    return (
        f"split=2[fitbg][fitfg];"
        f"[fitbg]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},"
        f"boxblur=luma_radius='min(6,min(w,h)/2-1)':luma_power=2"
        f":chroma_radius='min(3,min(cw,ch)/2-1)':chroma_power=2,"
        f"scale={width}:{height}:flags=bicubic,setsar=1[fitblur];"
        f"[fitfg]scale={width}:{height}:force_original_aspect_ratio=decrease,setsar=1[fitfront];"
        f"[fitblur][fitfront]overlay=(W-w)/2:(H-h)/2"
    )


def video_graph(prepared: PreparedClip, work: Path) -> str:
    """The filter graph up to (not including) captions, ending in an unlabelled video output."""
    out = prepared.plan.output
    w, h = out.width, out.height
    reframe = prepared.reframe
    if reframe is None:
        wave_h = even(h / 4)
        return (
            f"color=c={BACKGROUND}:s={w}x{h}:r={out.fps:g}[bg];"
            f"[0:a:0]showwaves=s={w}x{wave_h}:mode=cline:rate={out.fps:g}"
            f":colors={WAVE_COLOUR},format=yuva420p[wave];"
            f"[bg][wave]overlay=0:(H-h)/2:shortest=1"
        )
    x0, y0 = reframe.crop_at(prepared.timeline.to_clip(0.0))
    crop = f"crop@cam=w={reframe.crop_width}:h={reframe.crop_height}:x={x0}:y={y0}"
    moving = any(len({(k[1], k[2]) for k in s.keyframes}) > 1 for s in reframe.shots) or any(
        s.layout == "track" and reframe.crop_at(s.start) != (x0, y0) for s in reframe.shots
    )
    if moving:
        (work / "camera.cmd").write_text(
            camera_commands(reframe, prepared.timeline, out.fps), encoding="utf-8"
        )
        crop = f"sendcmd=f='{work / 'camera.cmd'}',{crop}"
    track = f"{crop},scale={w}:{h}:flags=bicubic,setsar=1"
    if reframe.layouts == {"track"}:
        return f"[0:v:0]{track}"
    if reframe.layouts == {"fit"}:
        return f"[0:v:0]{fit_chain(w, h)}"
    timeline = prepared.timeline
    spans = "+".join(
        f"between(t,{timeline.to_output(s.start):.3f},{timeline.to_output(s.end) - 0.001:.3f})"
        for s in reframe.shots
        if s.layout == "fit"
    )
    return (
        f"[0:v:0]split=2[trk][fit];[trk]{track}[tracked];[fit]{fit_chain(w, h)}[fitted];"
        f"[tracked][fitted]overlay=0:0:enable='{spans}'"
    )


class FfmpegOptions(ReframeOptions):
    pass


class FfmpegRenderer(Renderer):
    name = "ffmpeg"
    description = "one ffmpeg filter-graph pass per clip (reframe, scale, libass captions, x264)"
    Options: ClassVar[type[ProviderOptions]] = FfmpegOptions
    options: FfmpegOptions

    def render(
        self, source: Path, plan: ClipPlan, progress: Progress = lambda _: None
    ) -> RenderedClip:
        prepared = prepare(source, plan, self.options)
        progress(0.05)
        out = plan.output
        # a plain folder name: the paths go into the filter graph unescaped
        with tempfile.TemporaryDirectory(prefix="kadrio-render-", dir=_plain_tmp()) as tmp:
            work = Path(tmp)
            (work / "captions.ass").write_text(
                captions.to_ass(prepared.cues, prepared.style, out.width, out.height),
                encoding="utf-8",
            )
            for font in captions.font_dir().glob("*.otf"):
                shutil.copy(font, work / font.name)
            subs = f"ass=filename='{work / 'captions.ass'}':fontsdir='{work}'"
            graph = (
                f"{video_graph(prepared, work)},fps={out.fps:g},format=yuv420p,{subs},"
                # one frame goes on to the jpg: trim ends the branch, so the frames after it are
                # not converted for nothing; the jpeg's own range here, or the encoder of the jpg
                # would pull the mp4 to full range (yuvj420p) through the shared split
                f"split=2[vout][vpre];[vpre]select='gte(t,{prepared.preview_at:.3f})',"
                f"trim=end_frame=1,format=yuvj420p[vprev]"
            )
            audio = "0:a:0"
            if prepared.timeline.has_cuts:
                keep = prepared.timeline.select_expression()
                graph = graph.replace(
                    "[0:v:0]",
                    f"[0:v:0]select='{keep}',setpts=N/({plan.media.fps or 25:g})/TB,",
                    1,
                )
                graph += f";[0:a:0]aselect='{keep}',asetpts=N/SR/TB[aout]"
                audio = "[aout]"
            m = plan.moment
            args = ["-ss", f"{m.start:.3f}", "-t", f"{m.end - m.start:.3f}"]
            args += ["-i", f"file:{source}", "-filter_complex", graph, "-map", "[vout]"]
            if plan.media.has_audio:
                args += ["-map", audio, "-c:a", "aac", "-b:a", out.audio_bitrate]
            args += ["-c:v", "libx264", "-preset", out.preset, "-crf", str(out.crf)]
            args += ["-pix_fmt", "yuv420p", "-r", f"{out.fps:g}", "-movflags", "+faststart"]
            args += ["-f", "mp4", f"file:{prepared.partial('mp4')}"]
            args += ["-map", "[vprev]", "-frames:v", "1", "-q:v", "3", "-update", "1"]
            args += ["-f", "image2", f"file:{prepared.partial('jpg')}"]
            try:
                run_ffmpeg(
                    args,
                    duration=prepared.duration,
                    progress=lambda f: progress(0.05 + 0.95 * f),
                )
                prepared.partial("mp4").replace(prepared.path("mp4"))
                prepared.partial("jpg").replace(prepared.path("jpg"))
            finally:
                for ext in ("mp4", "jpg"):
                    prepared.partial(ext).unlink(missing_ok=True)
        write_subtitles(prepared)
        progress(1.0)
        return rendered(prepared, self.name)


@hookimpl
def register_renderers(register):  # type: ignore[no-untyped-def]
    register(FfmpegRenderer)
