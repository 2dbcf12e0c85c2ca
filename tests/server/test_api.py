"""The API's answers to bad or hostile requests, and the parts around the job flow: consent,
size cap, media validation, failed jobs, tokens, paging, deletion retries, health, OpenAPI."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kadrio_core.errors import ProviderUnavailable
from kadrio_core.hookspecs import hookimpl
from kadrio_core.media import run_ffmpeg
from kadrio_core.plugins import get_plugin_manager
from kadrio_plugins.storage.local import LocalStorage
from kadrio_server import api as api_module
from kadrio_server.auth import revoke_token
from kadrio_server.db import migrations
from kadrio_server.openapi import document
from kadrio_server.recovery import sweep
from kadrio_server.service import Service, job_prefix

from ..conftest import FIXTURES
from .conftest import CLIP_OPTIONS, Api, assert_erased, auth, rows_of_job

TALK = FIXTURES / "talk.mp4"


def nothing_stored(service: Service) -> bool:
    """No object in storage, no job row, no upload left in the temporary folder."""
    jobs = service.db.one("SELECT COUNT(*) AS n FROM jobs")
    return (
        list(service.storage.list("")) == []
        and jobs is not None
        and jobs["n"] == 0
        and list(service.tmp_dir().iterdir()) == []
    )


# -- consent, size, media -------------------------------------------------------------------


@pytest.mark.parametrize("consent", [None, "false", "yes", ""])
def test_no_consent_is_400_and_nothing_is_stored(api: Api, consent: str | None) -> None:
    _, token = api.user()
    response = api.upload(token, TALK, consent=consent, options=CLIP_OPTIONS)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "consent_required"
    assert "biometric" in response.json()["error"]["message"]
    assert nothing_stored(api.service)


def test_consent_sent_after_the_file_still_counts(api: Api) -> None:
    """Fields may come in any order; a refusal after the file drops the file too."""
    _, token = api.user()
    boundary = "kadrio-test-boundary"
    body = _multipart(boundary, [("file", TALK.read_bytes(), "talk.mp4"), ("consent", b"no", None)])
    response = api.client.post(
        "/api/v1/jobs",
        content=body,
        headers=auth(token) | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "consent_required"
    assert nothing_stored(api.service)


def test_outdated_consent_version_is_refused(api: Api) -> None:
    _, token = api.user()
    with TALK.open("rb") as fh:
        response = api.client.post(
            "/api/v1/jobs",
            data={"consent": "true", "consent_version": "2020-01-01"},
            files={"file": ("talk.mp4", fh)},
            headers=auth(token),
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "consent_outdated"
    assert nothing_stored(api.service)


def test_consent_text_is_published(api: Api) -> None:
    body = api.client.get("/api/v1/consent").json()
    assert body["kind"] == "biometric" and body["version"] == "2026-05-06"
    assert "biometric" in body["text"]["en"] and "биометрических" in body["text"]["ru"]


def test_over_the_cap_is_413_and_nothing_is_stored(make_api: Callable[..., Api]) -> None:
    api = make_api(service={"upload_max_bytes": 200_000})  # talk.mp4 is 700 KB
    _, token = api.user()
    response = api.upload(token, TALK, options=CLIP_OPTIONS)  # with a Content-Length
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert nothing_stored(api.service)

    # chunked, no Content-Length: the stream itself is counted and cut off
    boundary = "kadrio-test-boundary"
    body = _multipart(boundary, [("consent", b"true", None), ("file", TALK.read_bytes(), "a.mp4")])
    read = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            read.append(start)
            yield body[start : start + 64 * 1024]

    response = api.client.post(
        "/api/v1/jobs",
        content=chunks(),
        headers=auth(token) | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert nothing_stored(api.service)


def test_not_media_is_422_whatever_its_name(api: Api, tmp_path: Path) -> None:
    _, token = api.user()
    fake = tmp_path / "talk.mp4"
    fake.write_bytes((FIXTURES / "talk.txt").read_bytes())
    response = api.upload(token, fake, options=CLIP_OPTIONS)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unsupported_media"
    assert "talk.mp4" in error["message"] and str(tmp_path) not in error["message"]
    assert nothing_stored(api.service)


def test_media_is_accepted_whatever_its_name(make_api: Callable[..., Api]) -> None:
    """Probed, not judged by the extension: an mp4 called .txt is fine."""
    api = make_api(queue_url=None)  # SQLite queue and no worker: the job just waits
    _, token = api.user()
    response = api.upload(token, TALK, filename="notes.txt", options=CLIP_OPTIONS)
    assert response.status_code == 202
    assert api.job(token, response.json()["id"])["source"]["duration"] > 70


def test_corrupt_upload_becomes_a_failed_job_with_a_reason(api: Api, tmp_path: Path) -> None:
    """Headers and first frames fine (it passes the probe), the rest zeroed: fails in the worker."""
    whole = tmp_path / "faststart.mp4"
    run_ffmpeg(["-i", f"file:{TALK}", "-c", "copy", "-movflags", "+faststart", f"file:{whole}"])
    data = whole.read_bytes()
    keep = len(data) * 15 // 100
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(data[:keep] + bytes(len(data) - keep))
    _, token = api.user()
    response = api.upload(token, corrupt, options=CLIP_OPTIONS)
    assert response.status_code == 202, response.text
    job = api.job(token, response.json()["id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("transcription failed: ")
    assert "Decode error" in job["error"] or "decode" in job["error"].lower()
    assert job["finished_at"] is not None
    assert api.get(token, f"/api/v1/jobs/{job['id']}/clips").json() == {"clips": []}
    mail = next((api.service.settings.data_dir / "outbox").glob("*.eml")).read_text()
    assert "Subject: We could not make clips from corrupt.mp4" in mail


def test_too_short_and_bad_options_are_refused(api: Api, tmp_path: Path) -> None:
    _, token = api.user(plan="business")  # no plan limit in the way
    cases = [
        ({"max_clips": 2, "min_seconds": 100, "max_seconds": 120}, 422, "too_short"),
        ({"min_seconds": 30, "max_seconds": 20}, 400, "invalid_options"),
        ({"max_clips": 0}, 400, "invalid_options"),
        ({"colour": "red"}, 400, "invalid_options"),
        ({"caption_style": "no-such-style"}, 400, "invalid_options"),
        ({"language": "ru"}, 400, "invalid_options"),  # the bundled model is English-only
        ({"webhook_url": "ftp://example.org/x"}, 400, "invalid_options"),
    ]
    for options, status, code in cases:
        response = api.upload(token, TALK, options=options)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), options
    response = api.client.post(
        "/api/v1/jobs",
        data={"consent": "true", "options": "{not json"},
        files={"file": ("talk.mp4", TALK.read_bytes())},
        headers=auth(token),
    )
    assert response.json()["error"]["code"] == "invalid_options"
    assert nothing_stored(api.service)


def test_malformed_requests(api: Api) -> None:
    _, token = api.user()
    no_file = api.client.post(
        "/api/v1/jobs", files={"consent": (None, "true")}, headers=auth(token)
    )
    assert (no_file.status_code, no_file.json()["error"]["code"]) == (400, "file_required")
    as_json = api.client.post("/api/v1/jobs", json={"consent": True}, headers=auth(token))
    assert as_json.status_code == 415
    unknown = api.client.post(
        "/api/v1/jobs",
        data={"consent": "true", "owner": "someone-else"},
        files={"file": ("talk.mp4", TALK.read_bytes())},
        headers=auth(token),
    )
    assert unknown.status_code == 400 and "owner" in unknown.json()["error"]["message"]
    assert nothing_stored(api.service)
    missing = api.get(token, "/api/v1/no-such-route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# -- tokens and ownership -------------------------------------------------------------------


def test_tokens_are_required_and_revocable(api: Api) -> None:
    user, token = api.user()
    assert api.client.get("/api/v1/jobs").status_code == 401
    assert api.client.get("/api/v1/jobs").headers["www-authenticate"] == "Bearer"
    assert api.get("kad_" + "x" * 43, "/api/v1/jobs").status_code == 401
    assert api.client.get("/api/v1/jobs", headers={"Authorization": token}).status_code == 401
    me = api.get(token, "/api/v1/me").json()
    assert me["email"] == user["email"] and me["webhook_secret"].startswith("whsec_")
    stored = api.service.db.all("SELECT token_hash, prefix FROM api_tokens")
    assert all(token not in json.dumps(row) for row in stored)  # only its hash is kept
    revoke_token(api.service.db, token)
    assert api.get(token, "/api/v1/jobs").status_code == 401
    response = api.upload(token, TALK, options=CLIP_OPTIONS)
    assert response.status_code == 401
    assert nothing_stored(api.service)


def test_jobs_are_paged_and_private(make_api: Callable[..., Api]) -> None:
    api = make_api(queue_url=None)  # SQLite queue and no worker: jobs stay queued
    _, token = api.user(plan="business")  # several jobs at once
    _, other = api.user()
    ids = [api.upload(token, TALK, options=CLIP_OPTIONS).json()["id"] for _ in range(3)]
    mine = api.upload(other, TALK, options=CLIP_OPTIONS).json()["id"]
    first = api.get(token, "/api/v1/jobs?limit=2").json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    second = api.get(token, f"/api/v1/jobs?limit=2&before={first['next']}").json()
    assert [j["id"] for j in second["jobs"]] == ids[:1] and second["next"] is None
    # someone else's id as a cursor leaks nothing
    assert api.get(token, f"/api/v1/jobs?before={mine}").json()["jobs"] == []
    assert [j["id"] for j in api.get(other, "/api/v1/jobs").json()["jobs"]] == [mine]
    assert api.get(token, "/api/v1/jobs?limit=0").status_code == 400
    for job_id in ids:
        assert api.get(other, f"/api/v1/jobs/{job_id}").status_code == 404
        assert api.client.delete(f"/api/v1/jobs/{job_id}", headers=auth(other)).status_code == 404
    assert rows_of_job(api.service, ids[0])["jobs"] == 1


# -- deletion that fails half-way ------------------------------------------------------------


class FlakyStorage(LocalStorage):
    """Local storage whose first prefix deletion drops the connection after one object."""

    name = "flaky-local"
    failures = 1

    def delete(self, key_or_prefix: str) -> int:
        if key_or_prefix.endswith("/") and FlakyStorage.failures > 0:
            FlakyStorage.failures -= 1
            first = next(iter(self.list(key_or_prefix)), None)
            if first is not None:
                super().delete(first)
            raise ProviderUnavailable("connection reset by peer")
        return super().delete(key_or_prefix)


class FlakyPlugin:
    @hookimpl
    def register_storages(self, register):  # type: ignore[no-untyped-def]
        register(FlakyStorage)


@pytest.fixture
def flaky_storage() -> Iterator[None]:
    pm = get_plugin_manager()
    pm.register(FlakyPlugin(), name="flaky-storage")
    FlakyStorage.failures = 1
    yield
    pm.unregister(name="flaky-storage")


def test_deletion_failing_half_way_is_retried_until_nothing_is_left(
    flaky_storage: None, make_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = make_api(queue_url=None, storage="flaky-local")
    user, token = api.user()
    job_id = api.upload(token, TALK, options=CLIP_OPTIONS).json()["id"]
    prefix = job_prefix(user["id"], job_id)
    extra = tmp_path / "object"
    extra.write_text("x")
    for name in ("transcript.json", "clips/clip-01.mp4", "clips/clip-01.jpg"):
        api.service.storage.put(prefix + name, extra)
    assert len(list(api.service.storage.list(prefix))) == 4

    assert api.client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token)).status_code == 204
    # hidden from its owner at once, though the erasure stopped half-way
    assert api.get(token, f"/api/v1/jobs/{job_id}").status_code == 404
    assert api.get(token, "/api/v1/jobs").json()["jobs"] == []
    assert len(list(api.service.storage.list(prefix))) == 3
    assert rows_of_job(api.service, job_id)["jobs"] == 1
    assert api.service.queue.pending() >= 2  # the job's own task and the erasure retry

    assert sweep(api.service)["erase"] == 1
    assert_erased(api.service, user["id"], job_id)


# -- health and documents -------------------------------------------------------------------


def test_healthz_reports_each_dependency(
    api: Api, make_api: Callable[..., Api], tmp_path: Path
) -> None:
    report = api.client.get("/healthz")
    assert report.status_code == 200
    body = report.json()
    assert body["ok"] is True
    latest = migrations()[-1][0].split("_")[0]
    assert body["database"]["engine"] == "sqlite" and body["database"]["schema"] == latest
    assert body["queue"]["ok"] and body["storage"]["ok"]
    assert list(api.service.storage.list("healthz/")) == []

    from starlette.testclient import TestClient

    from kadrio_server.app import create_app

    from .conftest import make_settings

    broken = make_settings(
        tmp_path / "broken",
        database_url=f"postgresql://postgres@127.0.0.1:1/x{uuid.uuid4().hex[:6]}",
        queue_url="redis://127.0.0.1:1/0",
    )
    service = Service(broken)
    client = TestClient(create_app(service=service))  # no lifespan: nothing to migrate
    try:
        bad = client.get("/healthz")
        assert bad.status_code == 503
        assert bad.json()["database"]["ok"] is False and bad.json()["queue"]["ok"] is False
        assert bad.json()["storage"]["ok"] is True
    finally:
        service.close()


def test_openapi_document_lists_every_route(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    documented = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = {
        (route.path, method)
        for route in api_module.routes
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served
    refs = {r.split("/")[-1] for r in _refs(doc)}
    assert refs <= set(doc["components"]["schemas"])
    assert doc == document("http://testserver")


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _multipart(boundary: str, parts: list[tuple[str, bytes, str | None]]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


# -- recovery -------------------------------------------------------------------------------


def test_lost_queue_message_is_requeued_once_per_lease(make_api: Callable[..., Api]) -> None:
    api = make_api(queue_url=None, service={"lease_seconds": 0.5})  # no worker consumes
    _, token = api.user()
    job_id = api.upload(token, TALK, options=CLIP_OPTIONS).json()["id"]
    assert api.service.queue.pending() == 1
    time.sleep(0.6)
    assert sweep(api.service)["transcribe"] == 0  # its message may just be waiting its turn
    api.service.queue.huey.flush()  # the message is lost (a queue restarted without it)
    assert sweep(api.service)["transcribe"] == 1
    assert sweep(api.service)["transcribe"] == 0  # once per lease, not on every sweep
    assert api.service.queue.pending() == 1
    assert api.job(token, job_id)["status"] == "queued"


def test_half_written_uploads_are_cleaned_up(api: Api) -> None:
    tmp = api.service.tmp_dir()
    old, fresh = tmp / "upload-old", tmp / "upload-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 7 * 3600, time.time() - 7 * 3600))
    sweep(api.service)
    assert not old.exists() and fresh.exists()
