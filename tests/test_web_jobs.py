"""Jobs through the web pages: the upload streams through the API's code (consent required,
nothing stored without it), the dashboard's live status, another user's job answering 404 on
every page, "Delete" with the same cascade as the API, "Your data", and API tokens."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kadrio_server.service import job_prefix
from kadrio_server.users import find_user

from .browser.support import Web, csrf_of, make_web, sign_in
from .conftest import FIXTURES

OPTIONS = {"max_clips": 2, "min_seconds": 10, "max_seconds": 20, "caption_style": "karaoke"}


@pytest.fixture
def web(tmp_path: Path) -> Web:
    return make_web(tmp_path / "data")


def upload(
    browser: TestClient, csrf: str | None, consent: bool = True, path: Path = FIXTURES / "talk.mp4"
) -> Any:
    data = {"consent_version": "2026-05-06", "options": json.dumps(OPTIONS)}
    if consent:
        data = {"consent": "true"} | data
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    with path.open("rb") as fh:
        return browser.post(
            "/upload", data=data, files={"file": (path.name, fh, "video/mp4")}, headers=headers
        )


def member(web: Web, address: str) -> tuple[TestClient, str]:
    browser = web.client()
    sign_in(web, browser, address)
    return browser, csrf_of(browser.get("/upload").text)


def stored(web: Web) -> list[Path]:
    root = web.data_dir / "storage"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_needs_consent_and_the_csrf_token(web: Web) -> None:
    browser, csrf = member(web, "up@example.org")
    page = browser.get("/upload").text
    assert 'id="consent" name="consent" value="true">' in page  # not checked
    assert "biometric" in page and "faces and voices" in page

    refused = upload(browser, csrf, consent=False)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "consent_required"
    forged = upload(browser, None)
    assert forged.status_code == 403
    assert upload(browser, "not-the-token").status_code == 403
    anonymous = upload(web.client(), csrf)
    assert anonymous.status_code == 401
    # nothing was stored by any of them
    assert web.service.db.all("SELECT id FROM jobs") == []
    assert web.service.db.all("SELECT id FROM consents WHERE kind = 'biometric'") == []
    assert stored(web) == []
    assert list((web.data_dir / "tmp").iterdir()) == []


def test_upload_creates_the_job_with_its_consent_and_options(web: Web) -> None:
    browser, csrf = member(web, "ok@example.org")
    created = upload(browser, csrf)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["url"] == f"/jobs/{job_id}"
    job = web.service.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    assert job is not None and job["status"] == "queued"
    assert json.loads(job["options"]) == OPTIONS
    consent = web.service.db.one("SELECT * FROM consents WHERE job_id = ?", (job_id,))
    assert consent is not None and consent["kind"] == "biometric"
    assert consent["version"] == "2026-05-06"
    user = find_user(web.service.db, "ok@example.org")
    assert user is not None
    keys = list(web.service.storage.list(job_prefix(user["id"], job_id)))
    assert [k.rsplit("/", 1)[1] for k in keys] == ["source.mp4"]

    # the dashboard lists it with its live status; the page polls a JSON view of it
    dashboard = browser.get("/dashboard").text
    assert "talk.mp4" in dashboard and "Queued" in dashboard
    assert 'data-active="true"' in dashboard and "/static/status.js" in dashboard
    status = browser.get("/dashboard/status.json").json()
    assert status == {
        "jobs": [
            {"id": job_id, "status": "queued", "label": "Queued", "progress": 0, "active": True}
        ]
    }
    web.service.db.execute(
        "UPDATE jobs SET status = 'transcribing', progress = 17 WHERE id = ?", (job_id,)
    )
    one = browser.get(f"/jobs/{job_id}/status.json").json()
    assert (one["status"], one["label"], one["progress"]) == ("transcribing", "Transcribing", 17)
    assert web.client().get(f"/jobs/{job_id}/status.json").status_code == 401
    page = browser.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and 'value="17"' in page.text


def test_another_users_job_is_not_found_on_every_page(web: Web) -> None:
    owner, csrf = member(web, "owner@example.org")
    job_id = upload(owner, csrf).json()["id"]
    user = find_user(web.service.db, "owner@example.org")
    assert user is not None
    # a finished clip of the job, to ask for its files
    clip_id = "c" * 32
    files = {"mp4": job_prefix(user["id"], job_id) + "source.mp4"}
    web.service.db.execute(
        "INSERT INTO clips (id, job_id, user_id, idx, status, moment, title, score, "
        "start_time, end_time, files, created_at, heartbeat_at) "
        "SELECT ?, id, user_id, 1, 'done', '{}', 'A clip', 70, 1, 12, ?, created_at, "
        "created_at FROM jobs WHERE id = ?",
        (clip_id, json.dumps(files), job_id),
    )
    assert owner.get(f"/jobs/{job_id}/clips/{clip_id}/video").status_code == 200

    other, _ = member(web, "other@example.org")
    for path in (
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/delete",
        f"/jobs/{job_id}/clips/{clip_id}/video",
        f"/jobs/{job_id}/clips/{clip_id}/srt",
    ):
        assert other.get(path).status_code == 404, path
    assert other.get(f"/jobs/{job_id}/status.json").status_code == 404
    page = other.get("/dashboard")
    assert (
        other.post(f"/jobs/{job_id}/delete", data={"csrf": csrf_of(page.text)}).status_code == 404
    )
    assert job_id not in page.text and job_id not in other.get("/account/data").text
    assert other.get("/dashboard/status.json").json() == {"jobs": []}
    # still there for its owner
    assert owner.get(f"/jobs/{job_id}").status_code == 200


def test_delete_asks_first_then_erases_everything(web: Web) -> None:
    browser, csrf = member(web, "del@example.org")
    job_id = upload(browser, csrf).json()["id"]
    assert stored(web)
    confirm = browser.get(f"/jobs/{job_id}/delete")
    assert confirm.status_code == 200 and "Delete this job?" in confirm.text
    assert browser.post(f"/jobs/{job_id}/delete", data={}).status_code == 403
    assert web.service.db.one("SELECT id FROM jobs WHERE id = ?", (job_id,)) is not None

    done = browser.post(f"/jobs/{job_id}/delete", data={"csrf": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard?deleted=1"
    assert "were deleted" in browser.get("/dashboard?deleted=1").text
    assert web.service.db.one("SELECT id FROM jobs WHERE id = ?", (job_id,)) is None
    assert stored(web) == []
    assert browser.get(f"/jobs/{job_id}").status_code == 404


def test_your_data_lists_everything_with_the_retention_date(web: Web) -> None:
    browser, csrf = member(web, "data@example.org")
    job_id = upload(browser, csrf).json()["id"]
    page = browser.get("/account/data").text
    for text in ("data@example.org", "talk.mp4", "source.mp4", "Processing of biometric data"):
        assert text in page
    job = web.service.db.one("SELECT created_at FROM jobs WHERE id = ?", (job_id,))
    assert job is not None
    deleted_on = job["created_at"] + timedelta(days=7)  # the Free plan
    assert f"{deleted_on:%-d %b %Y, %H:%M} UTC" in page

    export = browser.get("/account/data.json")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    data = export.json()
    assert data["account"]["email"] == "data@example.org" and data["account"]["plan"] == "free"
    assert [j["id"] for j in data["jobs"]] == [job_id]
    assert data["jobs"][0]["objects"] == ["source.mp4"]
    assert data["jobs"][0]["expires_at"].startswith(deleted_on.strftime("%Y-%m-%d %H:%M"))
    assert sorted(c["kind"] for c in data["consents"]) == ["biometric", "personal_data"]
    assert len(data["sessions"]) == 1
    assert {e["event"] for e in data["technical_log"]} == {"sign_in", "upload"}


def test_api_tokens_created_and_revoked_in_the_page(web: Web) -> None:
    browser, _ = member(web, "tok@example.org")
    page = browser.get("/account/tokens")
    made = browser.post("/account/tokens", data={"csrf": csrf_of(page.text)})
    assert made.status_code == 200
    token = made.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("kad_")
    api = web.client()
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == "tok@example.org"
    # shown once: the list has only its prefix
    listed = browser.get("/account/tokens").text
    assert token not in listed and token[:10] in listed
    row = web.service.db.one("SELECT id FROM api_tokens")
    assert row is not None

    # nobody else can revoke it
    other, _ = member(web, "stranger@example.org")
    other_page = other.get("/account/tokens")
    stolen = other.post(
        f"/account/tokens/{row['id']}/revoke", data={"csrf": csrf_of(other_page.text)}
    )
    assert stolen.status_code == 404
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    revoked = browser.post(f"/account/tokens/{row['id']}/revoke", data={"csrf": csrf_of(listed)})
    assert revoked.status_code == 303
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "revoked" in browser.get("/account/tokens").text
