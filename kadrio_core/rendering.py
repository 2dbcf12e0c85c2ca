"""What every renderer shares: caption cues, the reframe plan, the preview time, the side files.

A renderer turns a :class:`ClipPlan` into pixels; everything decided before that (which words
are shown when, where the crop looks, which frame becomes the preview) is computed here once, so
the ``ffmpeg`` and ``moviepy`` renderers apply the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import captions
from .models import ClipPlan, RenderedClip
from .reframe import ReframeOptions, ReframePlan, audio_energy, plan_reframe


@dataclass
class PreparedClip:
    plan: ClipPlan
    duration: float
    style: captions.CaptionStyle
    cues: list[captions.Cue]
    reframe: ReframePlan | None  # None: the source has no picture
    preview_at: float

    def path(self, ext: str) -> Path:
        return self.plan.stem.with_suffix(f".{ext}")

    def partial(self, ext: str) -> Path:
        return self.plan.stem.with_name(f"{self.plan.stem.name}.part.{ext}")


def prepare(source: Path, plan: ClipPlan, options: ReframeOptions | None = None) -> PreparedClip:
    m = plan.moment
    duration = m.end - m.start
    style = captions.caption_style(plan.caption_style)
    words = captions.clip_words(plan.words, m.start, m.end)
    cues = captions.make_cues(words, max_chars=style.max_chars, until=duration)
    reframe = None
    if plan.media.has_video:
        energy = audio_energy(source, m.start, duration) if plan.media.has_audio else None
        reframe = plan_reframe(
            source,
            plan.media,
            m.start,
            duration,
            plan.output.width,
            plan.output.height,
            layout=plan.layout,
            options=options,
            energy=energy,
        )
    return PreparedClip(plan, duration, style, cues, reframe, preview_time(cues, reframe, duration))


def preview_time(cues: list[captions.Cue], reframe: ReframePlan | None, duration: float) -> float:
    """Early in the clip, with a caption on screen and, where there is one, the face in frame."""
    latest = max(duration - 0.1, 0.0)
    wanted = min(cues[0].words[-1].start + 0.05, latest) if cues else min(1.0, duration / 2)
    if reframe is not None and reframe.face_times:
        later = [t for t in reframe.face_times if t >= wanted]
        return min(later[0] if later else reframe.face_times[-1], latest)
    return wanted


def write_subtitles(prepared: PreparedClip) -> None:
    prepared.path("srt").write_text(captions.to_srt(prepared.cues), encoding="utf-8")
    prepared.path("vtt").write_text(captions.to_vtt(prepared.cues), encoding="utf-8")


def rendered(prepared: PreparedClip, renderer: str) -> RenderedClip:
    plan = prepared.plan
    layout: dict[str, object]
    if prepared.reframe is None:
        layout = {"layout": "waveform"}
    else:
        layout = {"layout": "+".join(sorted(prepared.reframe.layouts))}
        layout["reframe"] = prepared.reframe.model_dump(mode="json")
    layout["preview_at"] = round(prepared.preview_at, 3)
    return RenderedClip(
        index=plan.index,
        mp4=prepared.path("mp4"),
        srt=prepared.path("srt"),
        vtt=prepared.path("vtt"),
        jpg=prepared.path("jpg"),
        start=plan.moment.start,
        end=plan.moment.end,
        width=plan.output.width,
        height=plan.output.height,
        renderer=renderer,
        plan=layout,
    )
