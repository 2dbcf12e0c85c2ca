"""Shared by the service benchmarks: a real `kadrio serve` on 127.0.0.1 with its own data dir.

Everything stays on this machine (loopback only) and every load is bounded in time and count.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KADRIO = Path(sys.executable).with_name("kadrio")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    data_dir: Path
    log: Path

    def kadrio(self, *args: str) -> str:
        done = subprocess.run(
            [str(KADRIO), *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def user_token(self, email: str = "bench@example.org", plan: str = "business") -> str:
        self.kadrio("users", "create", email, "--plan", plan)
        return self.kadrio("tokens", "create", email).strip().splitlines()[-1]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL."""
    import psycopg

    name = f"kadrio_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_server(extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`kadrio serve` (no worker: jobs stay queued) in a fresh data dir, stopped at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix="kadrio-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADRIO_")}
    env |= {"KADRIO_DATA_DIR": str(data_dir)} | (extra_env or {})
    port = free_port()
    log = data_dir / "serve.log"
    subprocess.run([str(KADRIO), "db", "upgrade"], env=env, check=True, capture_output=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(KADRIO), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, env, data_dir, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
