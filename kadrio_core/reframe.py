"""Reframe planning: where the vertical crop looks, shot by shot, as data.

The source span is decoded once by ffmpeg at low resolution in grey (never held in memory whole;
a long span in parts decoded at once): every frame feeds a cheap shot-cut detector, and a few
frames a second feed a face detector (OpenCV's Haar cascade, or YuNet when a model file is
configured). Each shot gets a layout:

- ``track``: the crop follows one face along a smoothed path (a dead zone, a bounded pan speed,
  no move for a detection seen in one sample only);
- ``fit``: the whole frame scaled into the output over a blurred, enlarged copy of itself; chosen
  when a shot has no face, three or more faces, or two faces and no clear speaker.

With two faces the speaker is the one whose mouth moves while the audio is loud. At a cut the
camera jumps to the new shot's position instead of panning.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from .media import ffmpeg_exe
from .models import Contract, MediaInfo
from .providers import ProviderOptions


class ReframeOptions(ProviderOptions):
    analysis_width: int = Field(
        default=384, ge=96, le=1920, description="frames are analysed at this width (px)"
    )
    sample_fps: float = Field(default=4.0, ge=1, le=10, description="face samples per second")
    scan_fps: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="whole-frame face scans per second (new faces; every cut gets one too)",
    )
    dead_zone: float = Field(default=0.08, ge=0, le=0.5, description="share of the crop width")
    max_pan: float = Field(default=0.5, gt=0, description="crop widths per second at most")
    cut_threshold: float = Field(default=0.35, gt=0, le=1)
    detector: Literal["haar", "yunet"] = "haar"
    yunet_model: Path | None = Field(default=None, description="face_detection_yunet .onnx file")
    speaker_margin: float = Field(default=1.3, ge=1, description="how clearly a speaker must win")
    decoders: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        ge=1,
        le=16,
        description="ffmpeg decoders at once for a long clip (one part of the clip each)",
    )


class Shot(Contract):
    start: float
    end: float
    layout: Literal["track", "fit"]
    faces: int = 0
    reason: str = ""
    keyframes: list[tuple[float, float, float]] = Field(
        default_factory=list, description="(clip time, crop x, crop y) in source pixels"
    )


class ReframePlan(Contract):
    source_width: int
    source_height: int
    crop_width: int
    crop_height: int
    shots: list[Shot]
    face_times: list[float] = Field(
        default_factory=list, description="clip times where the tracked face is inside the crop"
    )

    def shot_at(self, t: float) -> Shot:
        starts = [s.start for s in self.shots]
        return self.shots[max(bisect.bisect_right(starts, t) - 1, 0)]

    def crop_at(self, t: float) -> tuple[int, int]:
        """Top-left corner of the crop at clip time ``t`` (linear between keyframes)."""
        shot = self.shot_at(t)
        keys = shot.keyframes
        if not keys:
            return (self.source_width - self.crop_width) // 2, (
                self.source_height - self.crop_height
            ) // 2
        times = [k[0] for k in keys]
        i = bisect.bisect_right(times, t)
        if i == 0:
            return round(keys[0][1]), round(keys[0][2])
        if i == len(keys):
            return round(keys[-1][1]), round(keys[-1][2])
        (t0, x0, y0), (t1, x1, y1) = keys[i - 1], keys[i]
        a = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        return round(x0 + a * (x1 - x0)), round(y0 + a * (y1 - y0))

    @property
    def layouts(self) -> set[str]:
        return {s.layout for s in self.shots}


def crop_size(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int]:
    """The largest even-sized box of the output's aspect ratio that fits in the source."""
    target = out_w / out_h
    if src_w / src_h > target:
        w, h = src_h * target, src_h
    else:
        w, h = src_w, src_w / target
    return max(2, int(w) // 2 * 2), max(2, int(h) // 2 * 2)


@dataclass
class Sample:
    t: float
    faces: list[tuple[float, float, float, float]]  # x, y, w, h in source pixels
    mouth_motion: list[float] = field(default_factory=list)


@dataclass
class Analysis:
    samples: list[Sample]
    cuts: list[float]
    duration: float


Box = tuple[float, float, float, float]  # x, y, w, h
Detector = Callable[[object, bool], Sequence[tuple[int, int, int, int]]]


def plan_reframe(
    source: Path,
    media: MediaInfo,
    start: float,
    duration: float,
    out_w: int,
    out_h: int,
    layout: str = "auto",
    options: ReframeOptions | None = None,
    energy: Callable[[float], float] | None = None,
) -> ReframePlan:
    """Plan the crop for the clip ``[start, start + duration]`` of ``source``."""
    options = options or ReframeOptions()
    cw, ch = crop_size(media.width, media.height, out_w, out_h)
    plan = ReframePlan(
        source_width=media.width,
        source_height=media.height,
        crop_width=cw,
        crop_height=ch,
        shots=[],
    )
    if layout == "fit":
        plan.shots = [Shot(start=0, end=duration, layout="fit", reason="fit asked for")]
        return plan
    if (cw, ch) == (media.width - media.width % 2, media.height - media.height % 2):
        plan.shots = [Shot(start=0, end=duration, layout="track", reason="same aspect ratio")]
        return plan
    analysis = analyse(source, media, start, duration, options)
    bounds = [0.0, *analysis.cuts, duration]
    shots = []
    for a, b in itertools.pairwise(bounds):
        samples = [s for s in analysis.samples if a <= s.t < b]
        shots.append(_plan_shot(plan, a, b, samples, layout, options, energy))
    plan.shots = shots
    plan.face_times = _face_times(plan, analysis.samples)
    return plan


def analyse(
    source: Path, media: MediaInfo, start: float, duration: float, options: ReframeOptions
) -> Analysis:
    """Faces and cuts of the span, decoded in parts at once where there are cores to spare.

    The decoder of a typical source uses about one core however many threads it is given (the
    B-frames it skips are what frame threads would overlap), so a long span is cut into parts,
    each decoded by its own ffmpeg and scanned by its own thread; face detection runs on one
    more thread (OpenCV releases the GIL).
    """
    aw = min(options.analysis_width, media.width - media.width % 2)
    ah = max(2, round(aw * media.height / media.width / 2) * 2)
    fps = media.fps or 25.0
    frames = max(1, math.ceil(duration * fps - 1e-6))
    parts = _parts(frames, fps, options.decoders)
    faces = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kadrio-faces")
    readers = ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="kadrio-decode")
    scan = _Scan(
        source, start, fps, aw, ah, media.width / aw, options, faces,
        slots=threading.BoundedSemaphore(32),  # frames waiting for the detector, at most
        stop=threading.Event(),
    )  # fmt: skip
    try:
        scans = [
            readers.submit(
                scan.run,
                *part,
                # made here: a first import of cv2 on two threads at once can fail
                _detector(options, aw, ah),
            )
            for part in parts
        ]
        try:
            results = [scan.result() for scan in scans]
            samples = [Sample(t, *job.result()) for part in results for t, job in part[0]]
        finally:
            scan.stop.set()  # one part failed: the others stop at their next frame
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        faces.shutdown(wait=True, cancel_futures=True)
    cuts = [c for part in results for c in part[1]]
    return Analysis(samples, [c for c in cuts if c < duration - 0.25], duration)


# frames decoded before a part's first one only to prime its cut detector
_WARMUP = 12


def _parts(frames: int, fps: float, decoders: int) -> list[tuple[int, int, int]]:
    """(first frame, end frame, warm-up frames) of each part; a part is 10 s at least."""
    count = max(1, min(decoders, int(frames / fps // 10)))
    bounds = [frames * i // count for i in range(count + 1)]
    return [(a, b, min(_WARMUP, a)) for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class _Scan:
    """The span's parts: each decoded by its own ffmpeg, its cuts found, its samples queued."""

    source: Path
    start: float
    fps: float
    width: int  # of the analysed frames
    height: int
    scale: float  # source pixels per analysed pixel
    options: ReframeOptions
    faces: ThreadPoolExecutor
    slots: threading.BoundedSemaphore
    stop: threading.Event

    def run(
        self, first: int, end: int, warmup: int, detect: Detector
    ) -> tuple[list[tuple[float, Future[tuple[list[Box], list[float]]]]], list[float]]:
        """Scan frames ``first`` to ``end`` (clip frames), after ``warmup`` frames of priming."""
        import numpy as np

        options, fps, aw, ah, scale = self.options, self.fps, self.width, self.height, self.scale
        step = max(1, round(fps / options.sample_fps))
        full_every = max(1, round(options.sample_fps / options.scan_fps))
        begin = first - warmup
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            # B-frames and deblocking are skipped: they cost most of the decode and change
            # nothing at this size; skipped frames are repeated, so frame n is still at n / fps
            "-skip_loop_filter", "all", "-skip_frame:v", "bidir", "-threads", "1",
            "-ss", f"{self.start + begin / fps:.3f}", "-t", f"{(end - begin) / fps:.3f}",
            "-i", f"file:{self.source}",
            "-an", "-sn", "-vf", f"scale={aw}:{ah}:flags=fast_bilinear,format=gray",
            "-fps_mode", "cfr", "-r", f"{fps:.6g}", "-f", "rawvideo", "pipe:1",
        ]  # fmt: skip
        size = aw * ah
        pending: list[tuple[float, Future[tuple[list[Box], list[float]]]]] = []
        cuts: list[float] = []
        previous = None  # the last frame that differs from the one before it
        previous_hist = None
        # no cut in the clip's first half second; a later part's warm-up frames cover it
        last_cut = 0.0 if begin == 0 else -math.inf
        last_sample = -1.0
        last_sampled = None
        recent: list[float] = []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            for index in range(begin, end):
                if self.stop.is_set():
                    break
                raw = proc.stdout.read(size)
                if len(raw) < size:
                    break
                frame = np.frombuffer(raw, dtype=np.uint8).reshape(ah, aw)
                t = index / fps
                small = frame[::4, ::4]
                moved = 1.0
                hist = previous_hist
                if previous is not None and previous_hist is not None:
                    moved = float(np.abs(small.astype(np.int16) - previous[::4, ::4]).mean()) / 255
                if moved > 0:  # a repeated (skipped) frame tells nothing new
                    hist = np.bincount(small.ravel() >> 4, minlength=16).astype(np.float64)
                    hist /= hist.sum()
                if moved > 0 and previous_hist is not None and hist is not None:
                    # a cut changes the colours (histogram) or, when the same things are shown
                    # elsewhere, the picture far more than the last frames' motion did
                    change = 0.5 * float(np.abs(hist - previous_hist).sum())
                    usual = sorted(recent)[len(recent) // 2] if recent else 0.0
                    recent.append(moved)
                    del recent[:-12]
                    jump = moved > 0.06 and moved > 4 * usual + 0.01
                    cut = change > options.cut_threshold or jump
                    if cut and t - last_cut >= 0.5:
                        if index >= first:
                            cuts.append(round(t, 3))
                        last_cut = t
                if index % step == 0:
                    if index >= first:
                        full = (index // step) % full_every == 0 or last_cut > last_sample
                        self.slots.acquire()
                        # mouths move between two samples of a speaker, not two frames
                        job = self.faces.submit(_look, detect, frame, last_sampled, scale, full)
                        job.add_done_callback(lambda _: self.slots.release())
                        pending.append((round(t, 3), job))
                    last_sample = t
                    last_sampled = frame
                if moved > 0:
                    previous, previous_hist = frame, hist
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        return pending, cuts


def _look(detect, frame, previous, scale: float, full: bool) -> tuple[list[Box], list[float]]:  # type: ignore[no-untyped-def]
    """Faces in one sample frame (source pixels) and, with two faces, how much each mouth moved."""
    boxes: list[Box] = [
        (x * scale, y * scale, w * scale, h * scale) for x, y, w, h in detect(frame, full)
    ]
    motion = []
    if len(boxes) == 2 and previous is not None:
        motion = [_mouth_motion(frame, previous, b, scale) for b in boxes]
    return boxes, motion


def _detector(options: ReframeOptions, width: int, height: int) -> Detector:
    import cv2

    if options.detector == "yunet":
        if options.yunet_model is None or not options.yunet_model.is_file():
            from .errors import BadInput

            raise BadInput(f"YuNet model file not found: {options.yunet_model}")
        yunet = cv2.FaceDetectorYN.create(str(options.yunet_model), "", (width, height), 0.7)

        def detect_yunet(frame, full):  # type: ignore[no-untyped-def]
            _, faces = yunet.detect(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            return [tuple(int(v) for v in f[:4]) for f in (faces if faces is not None else [])]

        return detect_yunet

    cascade = cv2.CascadeClassifier(
        str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")
    )
    min_side = max(24, height // 12)  # 24 px: the Haar cascade's own window
    known: list[tuple[int, int, int, int]] = []

    def detect_haar(frame, full):  # type: ignore[no-untyped-def]
        # A whole-frame scan is the costly part; between scans each known face is looked for
        # only around where it was, at about its size.
        if full or not known:
            found = cascade.detectMultiScale(frame, 1.1, 5, minSize=(min_side, min_side))
            known[:] = boxes = [tuple(int(v) for v in box) for box in found]
            return boxes
        boxes = []
        for i, (x, y, w, h) in enumerate(known):
            x0, y0 = max(x - w, 0), max(y - h // 2, 0)
            region = frame[y0 : y + h + h // 2, x0 : x + 2 * w]
            low, high = max(min_side, int(w * 0.7)), int(w * 1.5) + 1
            hits = cascade.detectMultiScale(region, 1.1, 4, minSize=(low, low),
                                            maxSize=(high, high))  # fmt: skip
            if len(hits):
                a, b, c, d = (int(v) for v in hits[0])
                known[i] = (a + x0, b + y0, c, d)  # a face not seen now is looked for again
                boxes.append(known[i])
        return boxes

    return detect_haar


def _mouth_motion(frame, previous, box, scale: float) -> float:  # type: ignore[no-untyped-def]
    x, y, w, h = (round(v / scale) for v in box)
    top = y + (2 * h) // 3
    region = (slice(top, y + h), slice(x + w // 4, x + (3 * w) // 4))
    now, before = frame[region].astype(int), previous[region].astype(int)
    return float(abs(now - before).mean()) if now.size else 0.0


def _plan_shot(
    plan: ReframePlan,
    start: float,
    end: float,
    samples: list[Sample],
    layout: str,
    options: ReframeOptions,
    energy: Callable[[float], float] | None,
) -> Shot:
    with_faces = [s for s in samples if s.faces]
    if not samples or len(with_faces) < max(1, len(samples) // 2):
        if layout == "track":
            return Shot(start=start, end=end, layout="track", reason="no face: centre")
        return Shot(start=start, end=end, layout="fit", reason="no face")
    counts = sorted(len(s.faces) for s in with_faces)
    typical = counts[len(counts) // 2]
    if typical >= 3 and layout != "track":
        return Shot(start=start, end=end, layout="fit", faces=typical, reason="many faces")
    if typical == 2:
        side = _speaker(with_faces, energy, options.speaker_margin)
        if side is None and layout != "track":
            return Shot(start=start, end=end, layout="fit", faces=2, reason="no clear speaker")
        targets = [_pick(s.faces, side if side is not None else "largest") for s in samples]
        reason = f"two faces: following the {side or 'larger'} one, who speaks"
    else:
        targets = [_pick(s.faces, "largest") for s in samples]
        reason = "one face"
    keyframes = _camera_path(plan, [s.t for s in samples], targets, options, start)
    return Shot(start=start, end=end, layout="track", faces=typical, reason=reason,
                keyframes=keyframes)  # fmt: skip


def _pick(faces: list[tuple[float, float, float, float]], which: str):  # type: ignore[no-untyped-def]
    if not faces:
        return None
    if which == "left":
        return min(faces, key=lambda f: f[0])
    if which == "right":
        return max(faces, key=lambda f: f[0])
    return max(faces, key=lambda f: f[2] * f[3])


def _speaker(
    samples: list[Sample], energy: Callable[[float], float] | None, margin: float
) -> str | None:
    left = right = 0.0
    for s in samples:
        if len(s.faces) != 2 or len(s.mouth_motion) != 2:
            continue
        gate = energy(s.t) if energy is not None else 1.0
        order = sorted(range(2), key=lambda i: s.faces[i][0])
        left += gate * s.mouth_motion[order[0]]
        right += gate * s.mouth_motion[order[1]]
    if left > right * margin:
        return "left"
    if right > left * margin:
        return "right"
    return None


def _camera_path(
    plan: ReframePlan,
    times: list[float],
    faces: list[tuple[float, float, float, float] | None],
    options: ReframeOptions,
    shot_start: float,
) -> list[tuple[float, float, float]]:
    """Keyframes of a calm camera: ignore lone detections, hold within a dead zone, pan slowly."""
    centres: list[tuple[float, float] | None] = []
    for i, face in enumerate(faces):
        neighbours = [faces[j] for j in (i - 1, i + 1) if 0 <= j < len(faces)]
        confirmed = face is not None and any(
            n is not None and abs(n[0] - face[0]) < max(face[2], 1.0) for n in neighbours
        )
        # a detection seen in one sample only (or jumping far from its neighbours) is noise
        centres.append((face[0] + face[2] / 2, face[1] + face[3] / 2) if confirmed else None)
    known = [c for c in centres if c is not None]
    if not known:
        return []
    held = []
    last = known[0]
    for c in centres:
        last = c if c is not None else last
        held.append(last)
    xs = _median_filter([c[0] for c in held], 5)
    ys = _median_filter([c[1] for c in held], 5)
    cw, ch = plan.crop_width, plan.crop_height
    max_x, max_y = plan.source_width - cw, plan.source_height - ch
    dead = options.dead_zone * cw
    speed = options.max_pan * cw
    cam_x, cam_y = _Axis(xs[0], dead), _Axis(ys[0], dead * ch / cw)
    keys = []
    previous_t = times[0]
    for t, tx, ty in zip(times, xs, ys, strict=True):
        dt = max(t - previous_t, 0.0)
        previous_t = t
        x = min(max(cam_x.follow(tx, speed * dt) - cw / 2, 0.0), float(max_x))
        y = min(max(cam_y.follow(ty, speed * dt) - ch / 2, 0.0), float(max_y))
        keys.append((round(t, 3), round(x, 1), round(y, 1)))
    keys[0] = (shot_start, keys[0][1], keys[0][2])  # hold the first position from the cut on
    return keys


@dataclass
class _Axis:
    """One axis of the camera: it holds still while the face stays within the dead zone, then
    re-centres at a bounded speed and holds again. Few moving frames look calm and cost the
    encoder less than a camera that trails the face all the time."""

    position: float
    dead: float
    moving: bool = False

    def follow(self, target: float, max_step: float) -> float:
        error = target - self.position
        if not self.moving and abs(error) > self.dead:
            self.moving = True
        if self.moving:
            self.position += math.copysign(min(abs(error), max_step), error)
            if abs(target - self.position) <= self.dead / 4:
                self.moving = False
        return self.position


def _median_filter(values: list[float], window: int) -> list[float]:
    half = window // 2
    out = []
    for i in range(len(values)):
        part = sorted(values[max(0, i - half) : i + half + 1])
        out.append(part[len(part) // 2])
    return out


def _face_times(plan: ReframePlan, samples: list[Sample]) -> list[float]:
    """Sample times at which a face is wholly inside a tracking crop."""
    times = []
    for s in samples:
        shot = plan.shot_at(s.t)
        if shot.layout != "track" or not s.faces:
            continue
        x, y = plan.crop_at(s.t)
        for fx, fy, fw, fh in s.faces:
            inside_x = x <= fx and fx + fw <= x + plan.crop_width
            inside_y = y <= fy and fy + fh <= y + plan.crop_height
            if inside_x and inside_y:
                times.append(s.t)
                break
    return times


def audio_energy(source: Path, start: float, duration: float) -> Callable[[float], float]:
    """Loudness (RMS, 0-1) of the source's audio around a clip time, decoded on first use."""
    import numpy as np

    rate, window = 8000, 0.25
    levels: list[float] = []

    def load() -> None:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", f"file:{source}",
            "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1",
        ]  # fmt: skip
        pcm = subprocess.run(cmd, capture_output=True, check=False).stdout
        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64) / 32768
        n = int(rate * window)
        levels.extend(
            float(np.sqrt(np.mean(audio[i : i + n] ** 2))) for i in range(0, len(audio), n)
        )
        levels.append(0.0)

    def energy(t: float) -> float:
        if not levels:
            load()
        return levels[min(max(int(t / window), 0), len(levels) - 1)]

    return energy
