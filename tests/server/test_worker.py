"""Real `kadrio worker` processes consuming from Redis, on PostgreSQL: a worker killed with
SIGKILL in the middle of a render, another one finishing the job without transcribing again
and without duplicate clips, and the signed webhook delivered after a failed first try."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kadrio_core.settings import load_settings
from kadrio_server.service import job_prefix

from ..conftest import FIXTURES, KADRIO, streams
from .conftest import CLIP_OPTIONS, Api, assert_erased, auth

REDIS_URL = "redis://127.0.0.1:6379/0"


class WebhookReceiver:
    """Answers 500 to the first delivery and 204 after; verifies every signature it gets."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self.deliveries: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(secret().encode(), body, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Kadrio-Signature", "")
                receiver.deliveries.append(
                    {
                        "valid": hmac.compare_digest(expected, signature),
                        "event": self.headers.get("X-Kadrio-Event"),
                        "body": json.loads(body),
                        "at": time.monotonic(),
                    }
                )
                self.send_response(500 if len(receiver.deliveries) == 1 else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kadrio"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """`kadrio worker` in its own process group: killing the group takes its ffmpeg too,
    as a machine that dies would."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(KADRIO), "worker"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def redis_env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings shared by the app in this process and the worker processes (environment)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"the worker test needs Redis on 127.0.0.1:6379: {exc}")
    env = {
        "KADRIO_DATABASE_URL": pg_url,
        "KADRIO_QUEUE_URL": REDIS_URL,
        "KADRIO_SERVICE__QUEUE_NAME": f"kadrio-test-{uuid.uuid4().hex[:10]}",
        "KADRIO_SERVICE__LEASE_SECONDS": "2",
        "KADRIO_SERVICE__WEBHOOK_RETRY_DELAY": "1",
        "KADRIO_SERVICE__WEBHOOK_ALLOW_PRIVATE": "true",
        # big enough frames that a render lasts a few seconds: long enough to be killed in
        "KADRIO_OUTPUT__WIDTH": "720",
        "KADRIO_OUTPUT__HEIGHT": "1280",
        "KADRIO_PROVIDERS__WHISPER__THREADS": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield


def wait_for(what: str, check: Callable[[], Any], timeout: float, workers: list[Worker]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    logs = "\n".join(w.log.read_text()[-3000:] for w in workers[-1:])
    pytest.fail(f"timed out waiting for {what}; worker log:\n{logs}")


def test_killed_worker_mid_render_resumes_without_duplicates(
    redis_env: None, make_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = make_api(load_settings())
    db = api.service.db
    user, token = api.user()
    workers: list[Worker] = []
    with WebhookReceiver(lambda: user["webhook_secret"]) as hook:
        try:
            created = api.upload(
                token, FIXTURES / "talk.mp4", options=CLIP_OPTIONS | {"webhook_url": hook.url}
            )
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            assert api.job(token, job_id)["status"] == "queued"  # nobody consumes it yet

            workers.append(Worker(tmp_path / "worker-1.log"))

            def clip_rendering() -> Any:
                return db.one(
                    "SELECT id, idx FROM clips WHERE job_id = ? AND status = 'rendering'",
                    (job_id,),
                )

            killed = wait_for("a clip to be rendering", clip_rendering, 90, workers)
            time.sleep(0.5)  # ffmpeg is encoding by now; a render here takes seconds
            workers[0].kill()
            frozen = db.one("SELECT status, runs FROM clips WHERE id = ?", (killed["id"],))
            assert frozen == {"status": "rendering", "runs": 1}, "not killed mid-render"

            workers.append(Worker(tmp_path / "worker-2.log"))

            def finished() -> Any:
                job = api.job(token, job_id)
                return job if job["status"] in ("done", "failed") else None

            job = wait_for("the job to finish", finished, 90, workers)
            assert job["status"] == "done", job
            # the transcript was checkpointed: the second worker did not transcribe again
            assert [a["stage"] for a in job["attempts"]].count("transcriber") == 1

            clips = db.all("SELECT * FROM clips WHERE job_id = ? ORDER BY idx", (job_id,))
            assert [c["idx"] for c in clips] == list(range(1, job["clip_count"] + 1))
            assert {c["status"] for c in clips} == {"done"}
            runs = {c["id"]: c["runs"] for c in clips}
            assert runs.pop(killed["id"]) == 2  # rendered again after the kill
            assert set(runs.values()) <= {1}  # the others once
            keys = list(api.service.storage.list(job_prefix(user["id"], job_id)))
            clip_files = [k for k in keys if "/clips/" in k]
            assert len(clip_files) == 4 * len(clips)  # mp4, srt, vtt, jpg: no duplicate objects
            assert len(keys) == len(clip_files) + 3  # + source, transcript.json, moments.json

            listed = api.get(token, f"/api/v1/jobs/{job_id}/clips").json()["clips"]
            video = api.get(token, listed[killed["idx"] - 1]["url"])
            assert video.status_code == 200
            out = tmp_path / "resumed.mp4"
            out.write_bytes(video.content)
            info = streams(out)
            assert (info.width, info.height, info.video_codec) == (720, 1280, "h264")
            assert abs(info.duration - listed[killed["idx"] - 1]["duration"]) < 1.0

            def delivered() -> Any:
                return api.job(token, job_id)["webhook"]["status"] == "delivered"

            wait_for("the webhook", delivered, 30, workers)
            assert len(hook.deliveries) == 2  # refused once, retried after a backoff
            assert all(d["valid"] for d in hook.deliveries)
            assert hook.deliveries[1]["at"] - hook.deliveries[0]["at"] >= 0.9
            last = hook.deliveries[-1]
            assert last["event"] == "job.done"
            assert last["body"]["job"]["id"] == job_id
            assert last["body"]["job"]["clip_count"] == len(clips)

            deleted = api.client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token))
            assert deleted.status_code == 204
            assert_erased(api.service, user["id"], job_id)
        finally:
            for worker in workers:
                worker.stop()
            api.service.queue.huey.flush()
