"""The whole service flow through the API: upload -> done -> download a playable clip -> delete
-> nothing left. On SQLite with local storage (the laptop setup, here with a transcriber chain
whose first provider is down) and on PostgreSQL with S3 (SeaweedFS), which also covers both
ways of delivering files. Another user sees none of it."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import httpx
import pytest

from kadrio_core.errors import ProviderUnavailable
from kadrio_core.hookspecs import hookimpl
from kadrio_core.plugins import get_plugin_manager
from kadrio_core.providers import Transcriber

from ..conftest import FIXTURES, streams
from .conftest import CLIP_OPTIONS, Api, assert_erased, auth, make_settings, rows_of_job


class OfflineTranscriber(Transcriber):
    """A cloud transcriber whose service is down: the chain falls back to whisper."""

    name = "offline"

    def transcribe(self, audio_path, options, progress=None):  # type: ignore[no-untyped-def]
        raise ProviderUnavailable("offline: connection refused after 3 tries")


class OfflinePlugin:
    @hookimpl
    def register_transcribers(self, register):  # type: ignore[no-untyped-def]
        register(OfflineTranscriber)


@pytest.fixture
def offline_transcriber() -> Iterator[None]:
    pm = get_plugin_manager()
    pm.register(OfflinePlugin(), name="offline-transcriber")
    yield
    pm.unregister(name="offline-transcriber")


@pytest.fixture(params=["sqlite-local", "postgresql-s3"])
def flow_api(request: pytest.FixtureRequest, make_api: Callable[..., Api], tmp_path: Path) -> Api:
    if request.param == "sqlite-local":
        request.getfixturevalue("offline_transcriber")
        return make_api(transcriber=["offline", "whisper"])
    pg_url = request.getfixturevalue("pg_url")
    seaweedfs = request.getfixturevalue("seaweedfs")
    bucket = seaweedfs.new_bucket()
    settings = make_settings(
        tmp_path / "data",
        database_url=pg_url,
        storage="s3",
        providers={"s3": seaweedfs.options(bucket)},
        service={"url_expires": 120},
    )
    return make_api(settings)


def test_upload_process_download_delete(flow_api: Api, tmp_path: Path) -> None:
    api = flow_api
    alice, token = api.user(language="ru")
    _, other = api.user()

    created = api.upload(token, FIXTURES / "talk.mp4", options=CLIP_OPTIONS)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued"
    assert created.headers["location"].endswith(f"/api/v1/jobs/{job_id}")

    job = api.job(token, job_id)
    assert job["status"] == "done", job
    assert job["progress"] == 100
    assert job["error"] is None
    assert job["providers"] == {"transcriber": "whisper", "selector": "local", "renderer": "ffmpeg"}
    transcribers = [a for a in job["attempts"] if a["stage"] == "transcriber"]
    if api.service.settings.transcriber == ["offline", "whisper"]:  # the fallback is recorded
        assert [(a["provider"], a["ok"]) for a in transcribers] == [
            ("offline", False),
            ("whisper", True),
        ]
        assert "connection refused" in transcribers[0]["error"]
    else:
        assert [(a["provider"], a["ok"]) for a in transcribers] == [("whisper", True)]
    assert job["source"]["name"] == "talk.mp4" and job["source"]["duration"] > 70
    assert 1 <= job["clip_count"] <= 2
    assert job["started_at"] and job["finished_at"] >= job["started_at"]

    listed = api.get(token, "/api/v1/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == [job_id] and listed["next"] is None

    clips = api.get(token, f"/api/v1/jobs/{job_id}/clips").json()["clips"]
    assert len(clips) == job["clip_count"]
    assert [c["index"] for c in clips] == list(range(1, len(clips) + 1))
    for clip in clips:
        assert clip["status"] == "done"
        assert 10 <= clip["duration"] <= 21
        assert (clip["width"], clip["height"]) == (270, 480)
        assert clip["title"] and 0 <= clip["score"] <= 100

    first = clips[0]
    video = _download(api, token, first["url"])
    out = tmp_path / "clip.mp4"
    out.write_bytes(video)
    info = streams(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (270, 480)
    assert abs(info.duration - first["duration"]) < 1.0
    assert _download(api, token, first["preview_url"])[:3] == b"\xff\xd8\xff"  # JPEG
    srt = _download(api, token, first["srt_url"]).decode()
    assert "-->" in srt and any(c.isalpha() for c in srt)
    assert _download(api, token, first["vtt_url"]).decode().startswith("WEBVTT")
    transcript = api.get(token, f"/api/v1/jobs/{job_id}/transcript", follow_redirects=False)
    if transcript.status_code == 307:  # S3: fetched from the presigned URL
        transcript = httpx.get(transcript.headers["location"], timeout=30)
    assert transcript.status_code == 200 and transcript.json()["words"]

    file_route = f"/api/v1/jobs/{job_id}/clips/{first['id']}/video"
    if api.service.settings.storage == "local":
        # the app serves local files itself, Range requests included
        part = api.get(token, file_route, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(video)}"
        assert part.content == video[100:200]
        assert first["url"].startswith("http://testserver/api/v1/")
    else:
        # S3: the client gets a short-lived presigned URL; the app never proxies the bytes
        assert first["url"].startswith(api.service.storage.options.endpoint_url)
        assert "X-Amz-Expires=120" in first["url"] and "X-Amz-Signature=" in first["url"]
        redirect = api.get(token, file_route, follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"].startswith(api.service.storage.options.endpoint_url)

    _assert_other_user_sees_nothing(api, other, job_id, first["id"])

    _assert_email(api, alice["email"], job_id)

    deleted = api.client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token))
    assert deleted.status_code == 204
    assert api.get(token, f"/api/v1/jobs/{job_id}").status_code == 404
    assert api.get(token, file_route).status_code == 404
    assert api.get(token, "/api/v1/jobs").json()["jobs"] == []
    assert_erased(api.service, alice["id"], job_id)
    # the consent record stays with the account, detached from the erased job
    consents = api.service.db.all("SELECT * FROM consents WHERE user_id = ?", (alice["id"],))
    assert [(c["kind"], c["version"], c["job_id"]) for c in consents] == [
        ("biometric", "2026-05-06", None)
    ]


def _download(api: Api, token: str, url: str) -> bytes:
    if url.startswith("http://testserver/"):
        response = api.get(token, url)
    else:  # presigned: no credentials of ours go with it
        response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.text[:300])
    return response.content


def _assert_other_user_sees_nothing(api: Api, token: str, job_id: str, clip_id: str) -> None:
    assert api.get(token, "/api/v1/jobs").json()["jobs"] == []
    base = f"/api/v1/jobs/{job_id}"
    urls = [base, f"{base}/clips", f"{base}/transcript"]
    urls += [f"{base}/clips/{clip_id}/{kind}" for kind in ("video", "preview", "srt", "vtt")]
    for url in urls:
        response = api.get(token, url, follow_redirects=False)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    deleted = api.client.delete(base, headers=auth(token))
    assert deleted.status_code == 404
    assert rows_of_job(api.service, job_id)["jobs"] == 1  # still there for its owner


def _assert_email(api: Api, to: str, job_id: str) -> None:
    outbox = api.service.settings.data_dir / "outbox"
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(outbox.glob("*.eml"))
    ]
    assert len(messages) == 1
    message = messages[0]
    assert message["To"] == to
    assert message["Subject"] == "Клипы готовы: talk.mp4"  # the user's language
    assert message["X-Kadrio-Job"] == job_id
    assert f"/jobs/{job_id}" in message.get_body(("plain",)).get_content()
