"""Requests per second and p99 latency of ``GET /api/v1/jobs`` under a loopback load.

One `kadrio serve` process (one uvicorn worker) per database engine, SQLite then PostgreSQL,
each with one user owning ``--jobs`` queued jobs (a page lists them all). The load is wrk
(Debian's package) with 50 connections for ``--seconds``; without wrk, a bounded httpx async
generator with the same connection count does it.

    python benchmarks/server_jobs_list.py [--seconds 15] [--connections 50] [--jobs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_common import ROOT, postgres_database, running_server


def seed(url: str, token: str, jobs: int) -> None:
    talk = (ROOT / "tests" / "fixtures" / "talk.mp4").read_bytes()
    for _ in range(jobs):
        response = httpx.post(
            f"{url}/api/v1/jobs",
            data={"consent": "true", "options": '{"max_clips": 2}'},
            files={"file": ("talk.mp4", talk, "video/mp4")},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        response.raise_for_status()


def with_wrk(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            f"{url}/api/v1/jobs",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": rps,
        "p99_ms": round(float(p99.group(1)) * scale, 2),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def with_httpx(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    async def run() -> dict[str, float]:
        latencies: list[float] = []
        failures = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:

            async def one_connection() -> None:
                nonlocal failures
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    response = await client.get(f"{url}/api/v1/jobs")
                    latencies.append(time.perf_counter() - started)
                    failures += response.status_code != 200

            started = time.monotonic()
            await asyncio.gather(*(one_connection() for _ in range(connections)))
            elapsed = time.monotonic() - started
        latencies.sort()
        return {
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "non_2xx": failures,
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = with_wrk if shutil.which("wrk") else with_httpx
    results = {}
    for engine in args.engines:
        database = postgres_database() if engine == "postgresql" else nullcontext(None)
        with database as db_url:
            env = {"KADRIO_DATABASE_URL": db_url} if db_url else {}
            with running_server(env) as server:
                token = server.user_token()
                seed(server.url, token, args.jobs)
                page = httpx.get(
                    f"{server.url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}
                ).json()
                assert len(page["jobs"]) == args.jobs
                load(server.url, token, 2, args.connections)  # warm-up
                result = load(server.url, token, args.seconds, args.connections)
        result |= {"tool": load.__name__.removeprefix("with_"), "jobs_per_page": args.jobs}
        results[engine] = result
        print(
            f"{engine:10s} {result['requests_per_s']:8.1f} req/s  p99 {result['p99_ms']:7.2f} ms"
            f"  non-2xx {result['non_2xx']}  ({result['tool']}, {args.connections} connections, "
            f"{args.seconds} s, {args.jobs} jobs per page)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
