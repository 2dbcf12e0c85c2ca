#!/usr/bin/env python3
"""Wall time, CPU time and peak memory of each pipeline stage on inputs of a given length.

Builds long inputs by looping ``samples/talk.mp4`` (stream copy, cached in
``benchmarks/results/inputs/``), runs the whole pipeline in-process with a reporter that times
every stage, and samples the RSS of the process tree (this process plus its ffmpeg children)
every 50 ms. Each input runs in a fresh worker process, so every run pays the same start-up
costs (whisper model load, plugin discovery) and no memory is carried over from an earlier run.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "talk.mp4"
RESULTS = ROOT / "benchmarks" / "results"
INPUTS = RESULTS / "inputs"
DEFAULT_JSON = RESULTS / "pipeline_stages.json"
STAGES = ("probe", "extract_audio", "transcribe", "select", "render")
INTERVAL = 0.05  # seconds between two RSS samples
MB = 1024 * 1024


# -- inputs ----------------------------------------------------------------------------------


def looped_input(minutes: float) -> Path:
    """``samples/talk.mp4`` looped to ``minutes`` (stream copy); built once, then reused."""
    from kadrio_core.media import ffmpeg_exe

    dest = INPUTS / f"{SAMPLE.stem}-{minutes:g}min.mp4"
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    INPUTS.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.stem}.part.mp4")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    cmd += ["-stream_loop", "-1", "-i", f"file:{SAMPLE}", "-t", f"{minutes * 60:.3f}"]
    cmd += ["-map", "0", "-c", "copy", "-f", "mp4", f"file:{part}"]
    started = time.perf_counter()
    try:
        subprocess.run(cmd, check=True)
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    log(f"built {dest.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")
    return dest


# -- measuring -------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class TreeSampler:
    """Samples the summed RSS of this process and all its descendants in a background thread."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.proc = psutil.Process()
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def tree_rss(self) -> int:
        total = self.proc.memory_info().rss
        with contextlib.suppress(psutil.Error):
            children = self.proc.children(recursive=True)
            for child in children:
                with contextlib.suppress(psutil.Error):  # a child may exit meanwhile
                    total += child.memory_info().rss
        return total

    def sample(self) -> int:
        rss = self.tree_rss()
        with self._lock:
            self.samples.append((time.perf_counter(), rss))
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def peak(self, start: float, end: float) -> int:
        with self._lock:
            inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class Window:
    name: str
    label: str
    start: float
    end: float
    cpu: float


class BenchReporter:
    """A pipeline Reporter that records each stage's time window and CPU seconds."""

    def __init__(self, sampler: TreeSampler, tag: str) -> None:
        self.sampler = sampler
        self.tag = tag
        self.windows: list[Window] = []
        self.messages: list[str] = []
        self.active: list[str] = []

    @contextlib.contextmanager
    def stage(self, name: str, label: str) -> Iterator[Callable[[float], None]]:
        start = time.perf_counter()
        cpu = cpu_seconds()
        self.sampler.sample()  # short stages get at least one sample at each end
        self.active.append(name)
        try:
            yield lambda _fraction: None
        finally:
            self.active.remove(name)
            self.sampler.sample()
            end = time.perf_counter()
            self.windows.append(Window(name, label, start, end, cpu_seconds() - cpu))
            log(f"[{self.tag}] {label}: {end - start:.2f} s")

    def info(self, text: str) -> None:
        self.messages.append(text)
        log(f"[{self.tag}] info: {text}")


@contextlib.contextmanager
def probe_as_stage(reporter: BenchReporter) -> Iterator[list[str]]:
    """Time ``probe`` as a stage when the pipeline does not report it as one itself.

    The pipeline may time its probe without ``Reporter.stage``; wrapping the ``probe`` it
    imported gives the benchmark a window for it. Yields the stages timed this way.
    """
    from kadrio_core import pipeline

    real = getattr(pipeline, "probe", None)
    wrapped: list[str] = []
    if real is None:
        yield wrapped
        return

    def probe(*args: Any, **kwargs: Any) -> Any:
        if "probe" in reporter.active:  # the pipeline reports it already
            return real(*args, **kwargs)
        if "probe" not in wrapped:
            wrapped.append("probe")
        with reporter.stage("probe", "Reading the video (timed by the benchmark)"):
            return real(*args, **kwargs)

    pipeline.probe = probe
    try:
        yield wrapped
    finally:
        pipeline.probe = real


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- one run ---------------------------------------------------------------------------------


def run_one(source: Path, max_clips: int) -> dict[str, Any]:
    """Run the whole pipeline on ``source`` in this process; return the measurements."""
    from kadrio_core import __version__
    from kadrio_core.pipeline import Pipeline
    from kadrio_core.settings import load_settings

    tag = source.name
    load_before = [round(x, 2) for x in os.getloadavg()]
    with (
        tempfile.TemporaryDirectory(prefix="kadrio-bench-data-") as data_dir,
        tempfile.TemporaryDirectory(prefix="kadrio-bench-out-") as out_root,
    ):
        settings = load_settings(data_dir=Path(data_dir), max_clips=max_clips)
        request = settings.selection_request()
        out_dir = Path(out_root) / "clips"  # fresh and empty: no checkpoint can be reused
        with TreeSampler() as sampler:
            baseline = sampler.sample()
            reporter = BenchReporter(sampler, tag)
            pipeline = Pipeline(settings, reporter)
            log(f"[{tag}] running the pipeline (max {max_clips} clips)")
            with probe_as_stage(reporter) as wrapped:
                cpu0 = cpu_seconds()
                start = time.perf_counter()
                manifest = pipeline.clip(source, out_dir, request)
                end = time.perf_counter()
            cpu_total = cpu_seconds() - cpu0
        output_bytes = sum(c.size for c in manifest.clips)
        transcript = json.loads((out_dir / "transcript.json").read_text("utf-8"))

    stages: dict[str, dict[str, Any]] = {}
    for name in [*STAGES, *sorted({w.name for w in reporter.windows} - set(STAGES))]:
        windows = [w for w in reporter.windows if w.name == name]
        if not windows:
            continue
        stages[name] = {
            "calls": len(windows),
            "wall_s": round(sum(w.end - w.start for w in windows), 3),
            "cpu_s": round(sum(w.cpu for w in windows), 3),
            "peak_rss_mb": round(max(sampler.peak(w.start, w.end) for w in windows) / MB, 1),
        }
    renders: list[Window | None] = [w for w in reporter.windows if w.name == "render"]
    renders += [None] * (len(manifest.clips) - len(renders))
    total = end - start
    staged = sum(s["wall_s"] for s in stages.values())
    duration = manifest.media.duration
    clip_seconds = sum(c.duration for c in manifest.clips)
    render_wall = stages.get("render", {}).get("wall_s", 0.0)
    return {
        "input": str(source),
        "input_size_mb": round(source.stat().st_size / MB, 2),
        "input_duration_s": round(duration, 3),
        "media": {
            "width": manifest.media.width,
            "height": manifest.media.height,
            "fps": round(manifest.media.fps, 3),
        },
        "kadrio_version": __version__,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "transcriber": settings.transcriber,
            "selector": settings.selector,
            "renderer": settings.renderer,
            "providers": settings.providers,
            "output": settings.output.model_dump(mode="json"),
            "max_clips": max_clips,
            "min_seconds": request.min_seconds,
            "max_seconds": request.max_seconds,
        },
        "providers_used": manifest.providers,
        "stages": stages,
        "stages_timed_by_benchmark": wrapped,
        "outside_stages_wall_s": round(total - staged, 3),
        "total_wall_s": round(total, 3),
        "total_cpu_s": round(cpu_total, 3),
        "rtf": round(total / duration, 4) if duration else None,
        "baseline_rss_mb": round(baseline / MB, 1),
        "peak_rss_mb": round(sampler.peak(start, end) / MB, 1),
        "rss_samples": len(sampler.samples),
        "clips": len(manifest.clips),
        "clip_seconds": round(clip_seconds, 3),
        "render_speed": round(clip_seconds / render_wall, 3) if render_wall else None,
        "output_mb": round(output_bytes / MB, 2),
        "words": len(transcript.get("words", [])),
        "manifest_timings": manifest.timings,
        "messages": reporter.messages + ([manifest.message] if manifest.message else []),
        "clip_list": [
            {
                "index": c.index,
                "start": c.start,
                "end": c.end,
                "duration": c.duration,
                "render_wall_s": round(w.end - w.start, 3) if w else None,
                "peak_rss_mb": round(sampler.peak(w.start, w.end) / MB, 1) if w else None,
            }
            for c, w in zip(manifest.clips, renders, strict=False)
        ],
    }


def run_isolated(source: Path, max_clips: int) -> dict[str, Any]:
    """Run ``run_one`` in a fresh Python process and read its result back."""
    with tempfile.TemporaryDirectory(prefix="kadrio-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(source)]
        cmd += ["--max-clips", str(max_clips), "--json", str(out)]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text("utf-8"))


# -- report ----------------------------------------------------------------------------------


def table(run: dict[str, Any]) -> str:
    media = run["media"]
    lines = [
        f"Input: {Path(run['input']).name}: {run['input_duration_s']:.1f} s "
        f"({run['input_duration_s'] / 60:.1f} min), {media['width']}x{media['height']} "
        f"@ {media['fps']:g} fps, {run['input_size_mb']:.1f} MB",
        f"{'stage':<16}{'calls':>6}{'wall s':>10}{'cpu s':>10}{'peak RSS MB':>14}",
    ]
    for name, s in run["stages"].items():
        lines.append(
            f"{name:<16}{s['calls']:>6}{s['wall_s']:>10.2f}{s['cpu_s']:>10.2f}"
            f"{s['peak_rss_mb']:>14.1f}"
        )
    for name in run.get("stages_timed_by_benchmark", []):
        lines.append(f"  ({name}: not a Reporter stage in the pipeline; timed by a wrapper)")
    lines.append(f"{'(outside stages)':<16}{'':>6}{run['outside_stages_wall_s']:>10.2f}")
    lines.append(
        f"{'total':<16}{'':>6}{run['total_wall_s']:>10.2f}{run['total_cpu_s']:>10.2f}"
        f"{run['peak_rss_mb']:>14.1f}"
    )
    speed = run["render_speed"]
    lines.append(
        f"RTF {run['rtf']:.3f} (total wall / input duration); "
        f"clips {run['clips']}, {run['clip_seconds']:.1f} s rendered, "
        f"render speed {f'{speed:.2f}x' if speed else 'n/a'} (clip s per render wall s); "
        f"baseline RSS {run['baseline_rss_mb']:.1f} MB"
    )
    if "load_average_before" in run:
        before, after = run["load_average_before"][0], run["load_average_after"][0]
        lines.append(f"1-min load average: {before:.2f} before, {after:.2f} after")
    return "\n".join(lines)


def _stage_cell(run: dict[str, Any], stage: str, key: str, spec: str) -> str:
    return format(run["stages"][stage][key], spec) if stage in run["stages"] else "-"


def comparison(runs: list[dict[str, Any]]) -> str:
    names = [f"{r['input_duration_s'] / 60:.1f} min" for r in runs]
    rows: list[tuple[str, list[str]]] = [
        ("input s", [f"{r['input_duration_s']:.1f}" for r in runs])
    ]
    for stage in STAGES:
        rows.append((f"{stage} s", [_stage_cell(r, stage, "wall_s", ".2f") for r in runs]))
        rows.append((f"{stage} MB", [_stage_cell(r, stage, "peak_rss_mb", ".1f") for r in runs]))
    rows += [
        ("total s", [f"{r['total_wall_s']:.2f}" for r in runs]),
        ("RTF", [f"{r['rtf']:.3f}" for r in runs]),
        ("peak RSS MB", [f"{r['peak_rss_mb']:.1f}" for r in runs]),
        ("clips", [str(r["clips"]) for r in runs]),
        ("clip s", [f"{r['clip_seconds']:.1f}" for r in runs]),
        ("render x", [f"{r['render_speed'] or 0:.2f}" for r in runs]),
    ]
    width = max(12, *(len(n) + 2 for n in names))
    out = [f"{'':<18}" + "".join(f"{n:>{width}}" for n in names)]
    out += [f"{label:<18}" + "".join(f"{v:>{width}}" for v in values) for label, values in rows]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_mb": round(psutil.virtual_memory().total / MB),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_report(path: Path, runs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": "pipeline_stages",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rss_interval_s": INTERVAL,
        "runs": runs,
    }
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        metavar="M",
        help="input lengths in minutes, made by looping samples/talk.mp4 (default: 3)",
    )
    parser.add_argument("--input", type=Path, action="append", help="a video to run as is")
    parser.add_argument("--max-clips", type=int, default=10, metavar="N", help="default 10")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, metavar="OUT", help=f"default {DEFAULT_JSON}"
    )
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run every input in this process (later runs reuse the loaded whisper model)",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:  # the isolated child of run_isolated
        result = run_one(args.worker.resolve(), args.max_clips)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return 0

    minutes = args.minutes if args.minutes or args.input else [3.0]
    sources = [looped_input(m) for m in minutes or []]
    for path in args.input or []:
        if not path.is_file():
            parser.error(f"not a file: {path}")
        sources.append(path.resolve())
    if any(k.startswith("KADRIO_") for k in os.environ) or Path("kadrio.toml").is_file():
        log("note: KADRIO_* environment or ./kadrio.toml in effect; settings are in the JSON")

    runs: list[dict[str, Any]] = []
    for source in sources:
        run = (
            run_one(source, args.max_clips)
            if args.same_process
            else run_isolated(source, args.max_clips)
        )
        runs.append(run)
        write_report(args.json, runs)  # after each input: a later failure keeps earlier runs
        print(table(run) + "\n", flush=True)
    if len(runs) > 1:
        print(comparison(runs))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
