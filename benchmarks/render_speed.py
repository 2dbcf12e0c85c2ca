#!/usr/bin/env python3
"""Render speed: Kadrio's renderers against a bare ffmpeg crop+scale+encode of the same span.

Builds (once, cached in ``benchmarks/results/inputs/``) a 1920x1080, 30 fps, 80 s talk: the
audio of ``samples/talk.mp4`` over scikit-image's astronaut photo, large (face >= 150 px) and
drifting slowly over a blurred backdrop with camera grain, with hard cuts at 25 s and 50 s,
encoded with x264 at about 6 Mb/s. It is transcribed once with the whisper transcriber (cached
too), then the same 60 s span (10 s - 70 s) is rendered to 1080x1920, in interleaved rounds:

a. bare ffmpeg: a fixed centre crop, scale, libx264 veryfast CRF 21 yuv420p 30 fps, AAC;
b. Kadrio's ``ffmpeg`` renderer, whole: reframe analysis, tracked crop, word captions, encode;
c. Kadrio's ``moviepy`` renderer, whole, with the same plan and encoder settings;
d. the reframe analysis alone (``rendering.prepare``: audio energy, decode, faces, cuts, path),
   with the tracking figure: the share of output frames whose face (where the input was
   built to put it) lies wholly inside the planned crop.

Each Kadrio run is a fresh Python process; its wall time is taken around ``render()`` inside
the process (imports of cv2/moviepy made by the render are included, the interpreter start is
not); the bare ffmpeg wall time includes its process start. Peak RSS is the summed RSS of the
measured process tree, sampled every 50 ms with psutil. ``--profile`` adds one run of each
variant that isolates a part of the ffmpeg renderer's cost. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "talk.mp4"
RESULTS = ROOT / "benchmarks" / "results"
INPUTS = RESULTS / "inputs"
SOURCE = INPUTS / "render-1080p-80s.mp4"
TRANSCRIPT = INPUTS / "render-1080p-80s.transcript.json"
DEFAULT_JSON = RESULTS / "render_speed.json"
SPAN = (10.0, 70.0)
LENGTH = 80.0
CUTS = (25.0, 50.0)
MB = 1024 * 1024
INTERVAL = 0.05


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ffmpeg() -> str:
    from kadrio_core.media import ffmpeg_exe

    return ffmpeg_exe()


# -- the input -------------------------------------------------------------------------------


def build_source() -> Path:
    """The 1080p talk; built once (about three minutes on two cores), then reused."""
    if SOURCE.is_file() and SOURCE.stat().st_size > 0:
        return SOURCE
    from skimage import data, io

    INPUTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kadrio-bench-") as tmp:
        pictures = {"face": data.astronaut(), "room": data.coffee(), "stage": data.rocket()}
        for name, picture in pictures.items():
            io.imsave(f"{tmp}/{name}.png", picture, check_contrast=False)
        a, b = CUTS
        # shot 1: face drifting right; shot 2: closer, on the right, drifting left; shot 3: a
        # wider framing drifting back; the photo bobs a little throughout
        x = f"if(lt(t,{a}),160+11*t,if(lt(t,{b}),900-6*(t-{a}),1150-9*(t-{b})))"
        y = "90+14*sin(t/3)"
        graph = (
            "[1:v]scale=1920:1080,gblur=sigma=5,setsar=1[room];"
            "[2:v]scale=1920:1080,gblur=sigma=5,setsar=1[stage];"
            f"[room][stage]overlay=0:0:enable='between(t,{a},{b})'[bg];"
            "[0:v]scale=880:880,setsar=1[photo];"
            f"[0:v]scale=1000:1000,setsar=1[close];"
            f"[bg][photo]overlay=x='{x}':y='{y}':eval=frame:"
            f"enable='not(between(t,{a},{b}))'[one];"
            f"[one][close]overlay=x='{x}':y='40+10*sin(t/3)':eval=frame:"
            f"enable='between(t,{a},{b})',"
            "noise=alls=5:allf=t,format=yuv420p[v]"
        )
        part = SOURCE.with_name(f"{SOURCE.stem}.part.mp4")
        cmd = [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        for name in ("face", "room", "stage"):
            cmd += ["-loop", "1", "-framerate", "30", "-t", f"{LENGTH}", "-i", f"{tmp}/{name}.png"]
        cmd += ["-i", f"file:{SAMPLE}", "-filter_complex", graph, "-map", "[v]", "-map", "3:a:0"]
        cmd += ["-t", f"{LENGTH}", "-r", "30", "-c:v", "libx264", "-preset", "fast"]
        cmd += ["-b:v", "6M", "-maxrate", "8M", "-bufsize", "12M", "-g", "60"]
        cmd += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", f"file:{part}"]
        try:
            subprocess.run(cmd, check=True)
            part.replace(SOURCE)
        finally:
            part.unlink(missing_ok=True)
    log(f"built {SOURCE.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s")
    return SOURCE


def transcript(source: Path) -> Any:
    """The source's words from the whisper transcriber, transcribed once and cached."""
    from kadrio_core.models import Transcript

    if TRANSCRIPT.is_file():
        return Transcript.model_validate_json(TRANSCRIPT.read_text())
    from kadrio_core.media import extract_audio, probe
    from kadrio_core.models import TranscriptionRequest
    from kadrio_core.plugins import registry
    from kadrio_core.settings import Settings

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kadrio-bench-") as tmp:
        wav = extract_audio(source, Path(tmp) / "audio.wav")
        whisper = registry("transcriber").create("whisper", Settings())
        request = TranscriptionRequest(language="en", duration=probe(source).duration)
        result = whisper.transcribe(wav, request)  # type: ignore[attr-defined]
    TRANSCRIPT.write_text(result.model_dump_json(indent=1))
    log(f"transcribed {len(result.words)} words in {time.perf_counter() - started:.0f} s")
    return result


def clip_plan(source: Path, words: list[Any], stem: Path) -> Any:
    from kadrio_core.media import probe
    from kadrio_core.models import ClipPlan, Moment, OutputFormat

    start, end = SPAN
    return ClipPlan(
        index=1,
        moment=Moment(start=start, end=end, score=50, title="benchmark"),
        words=[w for w in words if w.end > start and w.start < end],
        media=probe(source),
        output=OutputFormat(),  # 1080x1920, 30 fps, libx264 veryfast CRF 21, AAC 128k
        stem=stem,
    )


PHOTO_FACE = (177, 66, 95, 95)  # the face in skimage's astronaut (512x512): x, y, w, h


def true_face(t: float) -> tuple[float, float, float, float]:
    """Where build_source() put the face at source time ``t`` (its own expressions)."""
    import math

    a, b = CUTS
    x = 160 + 11 * t if t < a else (900 - 6 * (t - a) if t < b else 1150 - 9 * (t - b))
    size, y = (1000, 40 + 10 * math.sin(t / 3)) if a <= t < b else (880, 90 + 14 * math.sin(t / 3))
    k = size / 512
    fx, fy, fw, fh = PHOTO_FACE
    return x + fx * k, y + fy * k, fw * k, fh * k


def face_in_crop(reframe: Any, fps: float) -> dict[str, Any]:
    """Share of output frames whose (known) face lies wholly inside the planned crop."""
    frames = round((SPAN[1] - SPAN[0]) * fps)
    inside = 0
    for n in range(frames):
        t = n / fps
        fx, fy, fw, fh = true_face(SPAN[0] + t)
        x, y = reframe.crop_at(t)
        inside_x = x <= fx and fx + fw <= x + reframe.crop_width
        if inside_x and y <= fy and fy + fh <= y + reframe.crop_height:
            inside += 1
    return {"face_in_crop": round(inside / frames, 4), "frames": frames}


def bare_ffmpeg(source: Path, plan: Any, out: Path, crop: str | None = None) -> list[str]:
    """Crop + scale + encode with the renderer's encoder settings, nothing else."""
    from kadrio_core.reframe import crop_size

    o, m = plan.output, plan.media
    cw, ch = crop_size(m.width, m.height, o.width, o.height)
    crop = crop or f"crop={cw}:{ch}:{(m.width - cw) // 2}:{(m.height - ch) // 2}"
    cmd = [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    cmd += ["-ss", f"{SPAN[0]:.3f}", "-t", f"{SPAN[1] - SPAN[0]:.3f}", "-i", f"file:{source}"]
    cmd += ["-vf", f"{crop},scale={o.width}:{o.height}:flags=bicubic,setsar=1"]
    cmd += ["-map", "0:v:0", "-map", "0:a:0", "-c:a", "aac", "-b:a", o.audio_bitrate]
    cmd += ["-c:v", "libx264", "-preset", o.preset, "-crf", str(o.crf), "-pix_fmt", "yuv420p"]
    cmd += ["-r", f"{o.fps:g}", "-movflags", "+faststart", "-f", "mp4", f"file:{out}"]
    return cmd


# -- measuring -------------------------------------------------------------------------------


class TreePeak:
    """The highest summed RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while True:
            total = 0
            with contextlib.suppress(psutil.Error):
                total = self.root.memory_info().rss
                for child in self.root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
            self.peak = max(self.peak, total)
            if self._stop.wait(INTERVAL):
                return

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    kind: str
    round: int
    wall: float  # seconds of the measured work
    process_wall: float  # seconds of the whole process (interpreter start and exit included)
    cpu: float  # user + system seconds of the process tree
    peak_rss_mb: float
    detail: dict[str, Any] = field(default_factory=dict)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(cmd: list[str], kind: str, rnd: int) -> Run:
    """Run ``cmd`` to completion; a worker prints a JSON line with its own timings."""
    cpu0 = children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    with TreePeak(proc.pid) as peak:
        stdout, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed (exit {proc.returncode}): {shlex.join(cmd)[:300]}")
    detail = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    return Run(
        kind=kind,
        round=rnd,
        wall=float(detail.pop("seconds", wall)),
        process_wall=wall,
        cpu=children_cpu() - cpu0,
        peak_rss_mb=peak.peak / MB,
        detail=detail,
    )


def worker_cmd(kind: str, plan_file: Path, **extra: str) -> list[str]:
    cmd = [sys.executable, __file__, "--worker", kind, "--plan", str(plan_file)]
    for key, value in extra.items():
        cmd += [f"--{key}", value]
    return cmd


def worker(kind: str, plan_file: Path, decoders: int | None) -> int:
    """One render (or the analysis alone) in this fresh process; prints its timings as JSON."""
    from kadrio_core.models import ClipPlan
    from kadrio_core.plugins import registry
    from kadrio_core.reframe import ReframeOptions
    from kadrio_core.rendering import prepare
    from kadrio_core.settings import Settings

    plan = ClipPlan.model_validate_json(plan_file.read_text())
    source = plan.media.path
    options = {} if decoders is None else {"decoders": decoders}
    if kind == "analysis":
        started = time.perf_counter()
        prepared = prepare(source, plan, ReframeOptions(**options))
        seconds = time.perf_counter() - started
        assert prepared.reframe is not None
        shots = [(s.start, s.layout, s.reason) for s in prepared.reframe.shots]
        tracking = face_in_crop(prepared.reframe, plan.output.fps)
        print(json.dumps({"seconds": seconds, "shots": shots, **tracking}))
        return 0
    renderer = registry("renderer").create(kind, Settings(providers={kind: options}))
    started = time.perf_counter()
    clip = renderer.render(source, plan)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "layout": clip.plan.get("layout")}))
    return 0


# -- profile: where the ffmpeg renderer's time goes --------------------------------------------


def profile_runs(source: Path, plan: Any, plan_file: Path, work: Path) -> list[Run]:
    """One run of each variant isolating a part of the ffmpeg renderer's cost."""
    from kadrio_core import captions, reframe
    from kadrio_core.reframe import ReframeOptions
    from kadrio_core.rendering import prepare
    from kadrio_plugins.renderers.ffmpeg import camera_commands

    runs = []
    m, o = plan.media, plan.output
    opts = ReframeOptions()
    aw = opts.analysis_width
    ah = round(aw * m.height / m.width / 2) * 2
    span = ["-ss", f"{SPAN[0]:.3f}", "-t", f"{SPAN[1] - SPAN[0]:.3f}", "-i", f"file:{source}"]
    head = [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    skip = ["-skip_loop_filter", "all", "-skip_frame:v", "bidir"]
    decode = [*head, *skip, "-threads", "1", *span, "-an", "-sn", "-vf",
              f"scale={aw}:{ah}:flags=fast_bilinear,format=gray", "-f", "null", "-"]  # fmt: skip
    runs.append(measured(decode, "profile: analysis decode, one part (384 px grey)", 0))
    full = [*head, "-threads", "2", *span, "-an", "-sn", "-vf",
            f"scale={aw}:{ah}:flags=fast_bilinear,format=gray", "-f", "null", "-"]  # fmt: skip
    runs.append(measured(full, "profile: same with B-frames and the loop filter, 2 threads", 0))
    energy = [*head, *span, "-vn", "-ac", "1", "-ar", "8000", "-f", "null", "-"]
    runs.append(measured(energy, "profile: audio energy decode", 0))

    detecting = [0.0, 0]
    make_detector = reframe._detector

    def timed_detector(*args: Any) -> Any:
        detect = make_detector(*args)

        def timed(frame: Any, full: bool) -> Any:
            started = time.perf_counter()
            try:
                return detect(frame, full)
            finally:
                detecting[0] += time.perf_counter() - started
                detecting[1] += 1

        return timed

    reframe._detector = timed_detector  # type: ignore[assignment]
    try:
        cpu0, started = time.process_time(), time.perf_counter()
        analysis = reframe.analyse(source, m, SPAN[0], SPAN[1] - SPAN[0], opts)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    finally:
        reframe._detector = make_detector  # type: ignore[assignment]
    detail = {"samples": len(analysis.samples), "cuts": analysis.cuts,
              "face detection s": round(detecting[0], 2), "detections": detecting[1],
              "python CPU s (ffmpeg decode not included)": round(cpu, 2)}  # fmt: skip
    runs.append(Run("profile: analyse() in-process", 0, wall, 0, 0, 0, detail))
    prepared = prepare(source, plan, opts)
    assert prepared.reframe is not None
    cmd_file = work / "camera.cmd"
    cmd_file.write_text(camera_commands(prepared.reframe, prepared.timeline, o.fps))
    ass = work / "captions.ass"
    ass.write_text(captions.to_ass(prepared.cues, prepared.style, o.width, o.height))
    for font in captions.font_dir().glob("*.otf"):
        (work / font.name).write_bytes(font.read_bytes())
    r = prepared.reframe
    x0, y0 = r.crop_at(0.0)
    moving = f"sendcmd=f='{cmd_file}',crop@cam=w={r.crop_width}:h={r.crop_height}:x={x0}:y={y0}"
    subs = f"ass=filename='{ass}':fontsdir='{work}'"
    out = work / "profile.mp4"
    variants = {
        "profile: bare + the plan's moving crop (sendcmd)": moving,
        "profile: bare + moving crop + ASS captions": None,
    }
    for name, crop in variants.items():
        if crop is None:
            cmd = bare_ffmpeg(source, plan, out, moving)
            i = cmd.index("-vf") + 1
            cmd[i] = f"{cmd[i]},format=yuv420p,{subs}"
        else:
            cmd = bare_ffmpeg(source, plan, out, crop)
        runs.append(measured(cmd, name, 0))
    for kind in ("analysis", "ffmpeg"):
        one = worker_cmd(kind, plan_file, decoders="1")
        runs.append(measured(one, f"profile: {kind}, one decoder (no parallel parts)", 0))
    return runs


# -- report ----------------------------------------------------------------------------------

LABELS = {
    "bare": "a. bare ffmpeg crop+scale+encode",
    "ffmpeg": "b. Kadrio ffmpeg renderer (whole)",
    "moviepy": "c. Kadrio moviepy renderer (whole)",
    "analysis": "d. reframe analysis alone",
}


def summary(runs: list[Run]) -> dict[str, dict[str, float]]:
    out = {}
    for kind in LABELS:
        mine = [r for r in runs if r.kind == kind]
        if mine:
            out[kind] = {
                "runs": len(mine),
                "median_wall": statistics.median(r.wall for r in mine),
                "min_wall": min(r.wall for r in mine),
                "median_cpu": statistics.median(r.cpu for r in mine),
                "max_peak_rss_mb": max(r.peak_rss_mb for r in mine),
            }
    return out


def round_ratios(runs: list[Run], kind: str) -> list[float]:
    """Wall time of ``kind`` over bare ffmpeg's, round by round."""
    bare = {r.round: r.wall for r in runs if r.kind == "bare"}
    return [r.wall / bare[r.round] for r in runs if r.kind == kind and r.round in bare]


def table(runs: list[Run], stats: dict[str, dict[str, float]]) -> str:
    lines = [
        "| run | n | median wall s | min wall s | median CPU s | peak RSS MB | walls |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in LABELS.items():
        if kind not in stats:
            continue
        s = stats[kind]
        walls = ", ".join(f"{r.wall:.1f}" for r in runs if r.kind == kind)
        lines.append(
            f"| {label} | {s['runs']:.0f} | {s['median_wall']:.1f} | {s['min_wall']:.1f} | "
            f"{s['median_cpu']:.1f} | {s['max_peak_rss_mb']:.0f} | {walls} |"
        )
    bare = stats.get("bare", {}).get("median_wall")
    bare_cpu = stats.get("bare", {}).get("median_cpu")
    if bare:
        for kind, target in (("ffmpeg", 1.2), ("moviepy", None)):
            if kind in stats:
                ratio = stats[kind]["median_wall"] / bare
                cpu = stats[kind]["median_cpu"] / bare_cpu if bare_cpu else float("nan")
                verdict = ""
                if target is not None:
                    verdict = f" (target <= {target}: {'met' if ratio <= target else 'MISSED'})"
                # each round's runs are minutes apart at most: their ratio drifts less than
                # the machine's speed does over the whole benchmark
                rounds = ", ".join(f"{r:.2f}" for r in round_ratios(runs, kind))
                lines.append(
                    f"\n{kind}/bare: wall {ratio:.2f}x{verdict}, CPU {cpu:.2f}x; "
                    f"per round: {rounds}"
                )
    tracked = [r.detail["face_in_crop"] for r in runs if "face_in_crop" in r.detail]
    if tracked:
        lines.append(
            f"\nface wholly inside the planned crop: {min(tracked):.1%} of the output frames "
            "at worst (target >= 95 %)"
        )
    profile = [r for r in runs if r.kind.startswith("profile")]
    if profile:
        lines += ["", "| profile run | wall s | CPU s | detail |", "|---|---|---|---|"]
        for r in profile:
            lines.append(f"| {r.kind[9:]} | {r.wall:.1f} | {r.cpu:.1f} | {r.detail or ''} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import psutil

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_mb": round(psutil.virtual_memory().total / MB),
        "load_average": os.getloadavg(),
    }


# -- main ------------------------------------------------------------------------------------


@contextlib.contextmanager
def plan_file(source: Path, words: list[Any]) -> Iterator[tuple[Any, Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="kadrio-bench-") as tmp:
        work = Path(tmp)
        plan = clip_plan(source, words, work / "clip-01")
        path = work / "plan.json"
        path.write_text(plan.model_dump_json())
        yield plan, path, work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-moviepy", action="store_true", help="skip the moviepy renderer")
    parser.add_argument("--profile", action="store_true", help="also isolate cost components")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--decoders", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.plan, args.decoders)

    source = build_source()
    words = transcript(source).words
    runs: list[Run] = []
    kinds = ["bare", "ffmpeg", "analysis"] + ([] if args.no_moviepy else ["moviepy"])
    with plan_file(source, words) as (plan, path, work):
        log(f"span {SPAN[0]:g}-{SPAN[1]:g} s of {source.name}, {len(plan.words)} words")
        for rnd in range(1, args.rounds + 1):
            for kind in kinds:
                if kind == "bare":
                    run = measured(bare_ffmpeg(source, plan, work / "bare.mp4"), kind, rnd)
                else:
                    run = measured(worker_cmd(kind, path), kind, rnd)
                runs.append(run)
                log(f"round {rnd} {kind:9s} {run.wall:6.1f} s  cpu {run.cpu:6.1f} s  "
                    f"peak {run.peak_rss_mb:5.0f} MB  {run.detail or ''}")  # fmt: skip
        if args.profile:
            for run in profile_runs(source, plan, path, work):
                runs.append(run)
                log(f"{run.kind}: {run.wall:.1f} s  cpu {run.cpu:.1f} s")
    stats = summary(runs)
    print(table(runs, stats))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "created_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "source": str(source.relative_to(ROOT)),
        "span": SPAN,
        "summary": stats,
        "runs": [asdict(r) for r in runs],
    }
    args.json.write_text(json.dumps(report, indent=1))
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
