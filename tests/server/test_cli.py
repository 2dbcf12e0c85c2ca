"""The service's commands as a user runs them: `kadrio db upgrade`, `users`, `tokens`, and
`kadrio serve --with-worker` on a laptop with no settings at all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from kadrio_core.settings import Settings
from kadrio_server.auth import user_for_token
from kadrio_server.db import Database, migrations

from ..conftest import FIXTURES, KADRIO, run_kadrio
from .conftest import PG_ADMIN


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    name = f"kadrio_test_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_db_upgrade_is_idempotent(engine: str, isolated_settings: Path, request) -> None:
    env = {}
    if engine == "postgresql":
        env["KADRIO_DATABASE_URL"] = request.getfixturevalue("fresh_pg")
    names = [name for name, _ in migrations()]
    first = run_kadrio("db", "upgrade", env=env)
    assert first.code == 0, first.stderr
    assert [line.split()[-1] for line in first.stdout.splitlines()[:-1]] == names
    latest = names[-1].split("_")[0]
    assert first.stdout.splitlines()[-1] == f"database schema at version {latest} ({engine})"
    again = run_kadrio("db", "upgrade", env=env)
    assert again.code == 0
    assert again.stdout.splitlines() == [f"database schema at version {latest} ({engine})"]
    if engine == "sqlite":
        assert (isolated_settings / "kadrio.db").is_file()  # under the data dir by default


def test_users_and_tokens(isolated_settings: Path) -> None:
    created = run_kadrio("users", "create", "Ann@Example.org", "--plan", "pro")
    assert created.code == 0, created.stderr
    assert "ann@example.org" in created.stdout and "plan pro" in created.stdout
    again = run_kadrio("users", "create", "ann@example.org")
    assert again.code == 2 and again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr
    wrong = run_kadrio("users", "create", "bob@example.org", "--plan", "platinum")
    assert wrong.code == 2 and "unknown plan" in wrong.stderr

    issued = run_kadrio("tokens", "create", "ann@example.org")
    assert issued.code == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("kad_") and len(token) > 40
    second = run_kadrio("tokens", "create", "ann@example.org").stdout.strip().splitlines()[-1]

    db = Database.from_settings(Settings())
    try:
        user = user_for_token(db, token)
        assert user is not None and user["email"] == "ann@example.org" and user["plan"] == "pro"
        revoked = run_kadrio("tokens", "revoke", token)
        assert revoked.code == 0, revoked.stderr
        assert user_for_token(db, token) is None
        assert user_for_token(db, second) is not None  # only that one
        second_id = db.one("SELECT id FROM api_tokens WHERE revoked_at IS NULL")
        assert second_id is not None
        assert run_kadrio("tokens", "revoke", second_id["id"]).code == 0
        assert user_for_token(db, second) is None
    finally:
        db.close()
    missing = run_kadrio("tokens", "create", "nobody@example.org")
    assert missing.code == 2 and "no user" in missing.stderr
    assert run_kadrio("tokens", "revoke", "kad_unknown").code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_with_worker_on_a_laptop(isolated_settings: Path, tmp_path: Path) -> None:
    """No database, queue or storage settings: SQLite, SqliteHuey and local files."""
    port = _free_port()
    assert run_kadrio("users", "create", "ann@example.org").code == 0
    token = run_kadrio("tokens", "create", "ann@example.org").stdout.strip().splitlines()[-1]
    env = dict(os.environ, KADRIO_OUTPUT__WIDTH="270", KADRIO_OUTPUT__HEIGHT="480")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(KADRIO), "serve", "--port", str(port), "--with-worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 30, log, server)
        headers = {"Authorization": f"Bearer {token}"}
        with (FIXTURES / "talk.mp4").open("rb") as fh:
            created = httpx.post(
                f"{base}/api/v1/jobs",
                data={"consent": "true", "options": '{"max_clips": 1, "min_seconds": 10}'},
                files={"file": ("talk.mp4", fh, "video/mp4")},
                headers=headers,
                timeout=60,
            )
        assert created.status_code == 202, created.text
        job_url = f"{base}/api/v1/jobs/{created.json()['id']}"

        def done() -> bool:
            status = httpx.get(job_url, headers=headers, timeout=5).json()["status"]
            assert status != "failed"
            return status == "done"

        _wait(done, 90, log, server)
        clips = httpx.get(f"{job_url}/clips", headers=headers, timeout=5).json()["clips"]
        assert len(clips) == 1
        video = httpx.get(clips[0]["url"], headers=headers, timeout=30)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video.content[4:8] == b"ftyp"
        assert (isolated_settings / "kadrio.db").is_file()
        assert (isolated_settings / "queue.db").is_file()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log.read_text()[-2000:]


def _wait(check, timeout: float, log: Path, server: subprocess.Popen[bytes]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server not ready or gone; its log:\n{log.read_text()[-3000:]}")
