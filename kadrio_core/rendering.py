"""What every renderer shares: caption cues, the reframe plan, the preview time, the side files.

A renderer turns a :class:`ClipPlan` into pixels; everything decided before that (which words
are shown when, where the crop looks, which frame becomes the preview) is computed here once, so
the ``ffmpeg`` and ``moviepy`` renderers apply the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import captions
from .models import ClipPlan, Moment, RenderedClip
from .reframe import ReframeOptions, ReframePlan, audio_energy, plan_reframe


@dataclass(frozen=True)
class Timeline:
    """Clip time (0 = the moment's start) against output time, with the moment's cuts left out.

    Without cuts the two are the same. The reframe plan stays in clip time (it describes the
    source); captions, the camera commands and the preview are placed in output time.
    """

    keep: tuple[tuple[float, float], ...]
    length: float

    @classmethod
    def of(cls, moment: Moment) -> Timeline:
        length = moment.end - moment.start
        spans = sorted(
            (max(a - moment.start, 0.0), min(b - moment.start, length)) for a, b in moment.cuts
        )
        keep, position = [], 0.0
        for a, b in spans:
            if b <= a:
                continue
            if a > position:
                keep.append((position, a))
            position = max(position, b)
        if position < length:
            keep.append((position, length))
        return cls(tuple(keep), length)

    @property
    def has_cuts(self) -> bool:
        return self.keep != ((0.0, self.length),)

    @property
    def duration(self) -> float:
        return sum(b - a for a, b in self.keep)

    def to_output(self, t: float) -> float:
        """Output time of clip time ``t``; a time inside a cut maps to where the cut was."""
        done = 0.0
        for a, b in self.keep:
            if t < a:
                return done
            if t <= b:
                return done + t - a
            done += b - a
        return done

    def to_clip(self, tau: float) -> float:
        done = 0.0
        for a, b in self.keep:
            if tau <= done + (b - a):
                return a + tau - done
            done += b - a
        return self.keep[-1][1] if self.keep else 0.0

    def kept(self, t: float) -> bool:
        return any(a <= t <= b for a, b in self.keep)

    def select_expression(self) -> str:
        """An ffmpeg expression, true for the frames and samples that are kept."""
        return "+".join(f"between(t,{a:.3f},{b:.3f})" for a, b in self.keep)


@dataclass
class PreparedClip:
    plan: ClipPlan
    duration: float  # of the output, cuts left out
    timeline: Timeline
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
    span = m.end - m.start
    timeline = Timeline.of(m)
    duration = timeline.duration
    style = captions.caption_style(plan.caption_style)
    words = [
        w.model_copy(
            update={"start": timeline.to_output(w.start), "end": timeline.to_output(w.end)}
        )
        for w in captions.clip_words(plan.words, m.start, m.end)
        if timeline.kept((w.start + w.end) / 2)
    ]
    cues = captions.make_cues(words, max_chars=style.max_chars, until=duration)
    reframe = None
    if plan.media.has_video:
        energy = audio_energy(source, m.start, span) if plan.media.has_audio else None
        reframe = plan_reframe(
            source,
            plan.media,
            m.start,
            span,
            plan.output.width,
            plan.output.height,
            layout=plan.layout,
            options=options,
            energy=energy,
        )
    preview = preview_time(cues, reframe, timeline)
    return PreparedClip(plan, duration, timeline, style, cues, reframe, preview)


def preview_time(
    cues: list[captions.Cue], reframe: ReframePlan | None, timeline: Timeline
) -> float:
    """Early in the clip, with a caption on screen and, where there is one, the face in frame.

    In output time.
    """
    latest = max(timeline.duration - 0.1, 0.0)
    wanted = min(cues[0].words[-1].start + 0.05, latest) if cues else min(1.0, latest / 2)
    if reframe is not None and reframe.face_times:
        faces = [timeline.to_output(t) for t in reframe.face_times if timeline.kept(t)]
        later = [t for t in faces if t >= wanted]
        if later or faces:
            return min(later[0] if later else faces[-1], latest)
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
