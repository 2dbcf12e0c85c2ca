"""Peak memory of `kadrio serve` while a 2 GB file is uploaded to it (it should stay flat).

The body is generated on the fly, never held in memory or written on the client side: the
fixture talk.mp4 remuxed once to MPEG-TS (a format whose files can be concatenated byte-wise),
then repeated until the size is reached. The server streams it to a temporary file, probes it
(it is real media), stores it (local storage) and records a queued job. Its RSS is sampled every
20 ms with psutil from before the upload to after the answer.

    python benchmarks/server_upload_memory.py [--gigabytes 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_common import ROOT, running_server

CHUNK = 1 << 20
BOUNDARY = "kadrio-bench-boundary"


def ts_unit() -> bytes:
    from kadrio_core.media import run_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "talk.ts"
        source = ROOT / "tests" / "fixtures" / "talk.mp4"
        run_ffmpeg(["-i", f"file:{source}", "-c", "copy", "-f", "mpegts", f"file:{out}"])
        return out.read_bytes()


def body(unit: bytes, size: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="consent"\r\n\r\ntrue\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="options"\r\n\r\n'
        '{"max_clips": 1}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="big.ts"\r\nContent-Type: video/mp2t\r\n\r\n'
    ).encode()
    repeated = unit * max(1, CHUNK // len(unit))
    sent = 0
    while sent < size:
        piece = repeated[: min(len(repeated), size - sent)]
        sent += len(piece)
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.process.memory_info().rss))
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = int(args.gigabytes * 1e9)
    unit = ts_unit()
    env = {"KADRIO_SERVICE__UPLOAD_MAX_BYTES": str(size + CHUNK)}
    with running_server(env) as server:
        token = server.user_token()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        # warm up with one small upload: the first one imports PyAV, the plugins and the
        # pipeline (~25 MB, once per process); what is measured is what an upload costs
        talk = (ROOT / "tests" / "fixtures" / "talk.mp4").read_bytes()
        warm = httpx.post(
            f"{server.url}/api/v1/jobs",
            data={"consent": "true"},
            files={"file": ("talk.mp4", talk, "video/mp4")},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        warm.raise_for_status()
        sampler = Sampler(server.process.pid)
        sampler.start()
        time.sleep(0.5)
        started = time.monotonic()
        response = httpx.post(
            f"{server.url}/api/v1/jobs",
            content=body(unit, size),
            headers=headers,
            timeout=httpx.Timeout(600, connect=10),
        )
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        sampler.stop.set()
        sampler.join()
        if response.status_code != 202:
            raise SystemExit(f"upload failed: {response.status_code} {response.text}")
        job = httpx.get(
            f"{server.url}/api/v1/jobs/{response.json()['id']}",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    rss = [r for _, r in sampler.samples]
    before = [r for t, r in sampler.samples if t < started]

    def at(fraction: float) -> float:
        moment = started + elapsed * fraction
        return round(min(sampler.samples, key=lambda s: abs(s[0] - moment))[1] / 1e6, 1)

    result = {
        "uploaded_bytes": size,
        "stored_source_bytes": job["source"]["size"],
        "seconds": round(elapsed, 1),
        "mb_per_s": round(size / elapsed / 1e6, 1),
        "rss_before_mb": round(max(before) / 1e6, 1),
        "rss_peak_mb": round(max(rss) / 1e6, 1),
        "rss_growth_mb": round((max(rss) - max(before)) / 1e6, 1),
        "samples": len(rss),
        # sampled over the whole request: streaming the body, then probing and storing it
        "rss_during_upload_mb": {f"{p:.0%}": at(p) for p in (0.1, 0.3, 0.5, 0.7, 0.9)},
    }
    print(
        f"uploaded {size / 1e9:.2f} GB in {result['seconds']} s ({result['mb_per_s']} MB/s); "
        f"server RSS before {result['rss_before_mb']} MB, peak {result['rss_peak_mb']} MB "
        f"(+{result['rss_growth_mb']} MB) over {result['samples']} samples; during the upload: "
        + ", ".join(f"{k} {v} MB" for k, v in result["rss_during_upload_mb"].items())
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
