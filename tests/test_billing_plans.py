"""The plans file and the limits an upload must fit: size (413), length (422), monthly minutes
(402), concurrent jobs (429), clips per job and clip length (400); each refusal stores nothing."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kadrio_core.errors import BadInput
from kadrio_core.settings import Settings
from kadrio_server.plans import Plan, load_plans, plans_path

from .billing_helpers import count, reload_user, settings_for
from .conftest import FIXTURES
from .server.conftest import Api, make_api  # noqa: F401  (make_api: a fixture)

SHIPPED = tomllib.loads(plans_path(Settings()).read_text("utf-8"))
TALK_MINUTES = 78 / 60


def plans_file(folder: Path, **free: Any) -> Path:
    """The shipped plans with some Free limits changed, as a TOML file."""
    data = {name: dict(plan) for name, plan in SHIPPED["plans"].items()}
    data["free"].update(free)
    lines = []
    for name, plan in data.items():
        lines.append(f"[plans.{name}]")
        for key, value in plan.items():
            lines.append(f"{key} = {_toml(value)}")
    path = folder / "plans.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return '"' + value + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.fixture
def limited(make_api: Callable[..., Api], tmp_path: Path) -> Callable[..., Api]:  # noqa: F811
    """The app with a plans file of our own; jobs are queued (no worker runs them)."""

    def build(**free: Any) -> Api:
        folder = tmp_path / "plans"
        folder.mkdir(exist_ok=True)
        settings = settings_for(
            tmp_path / "data",
            queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
            billing={"plans_file": plans_file(folder, **free)},
        )
        return make_api(settings)

    return build


def stored_objects(api: Api) -> list[str]:
    return list(api.service.storage.list("users/"))


def refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return str(error["message"])


def test_shipped_plans_file_is_valid_and_documented() -> None:
    plans = load_plans(Settings())
    assert [p.name for p in plans.ordered()] == ["free", "starter", "pro", "business"]
    retention = {p.name: (p.retention.after, p.retention.days) for p in plans.ordered()}
    assert retention == {
        "free": ("upload", 7),
        "starter": ("subscription_end", 14),
        "pro": ("subscription_end", 30),
        "business": ("subscription_end", 90),
    }
    header = plans_path(Settings()).read_text("utf-8").split("[plans.free]")[0]
    for field in Plan.model_fields:
        if field != "name":
            assert re.search(rf"^#\s+{field}\s", header, re.M), f"{field} is not documented"
    # bigger plans never allow less
    for smaller, bigger in zip(plans.ordered(), plans.ordered()[1:], strict=False):
        for field in (
            "minutes_per_month",
            "max_upload_mb",
            "max_video_minutes",
            "clips_per_job",
            "max_clip_seconds",
            "concurrent_jobs",
        ):
            assert getattr(bigger, field) >= getattr(smaller, field), (bigger.name, field)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price_rub": 10}, "free plan must cost 0"),
        ({"retention": {"after": "subscription_end", "days": 7}}, "paid plan keeps files"),
        ({"clips_per_job": 0}, "plans.free.clips_per_job"),
        ({"minutes_per_month": "lots"}, "plans.free.minutes_per_month"),
        ({"colour": "red"}, "plans.free.colour"),
    ],
)
def test_a_bad_plans_file_is_one_clear_error(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = plans_file(tmp_path, **change)
    with pytest.raises(BadInput, match=re.escape(message)) as error:
        load_plans(Settings(billing={"plans_file": path}))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_upload_over_the_plan_size_is_413_and_stores_nothing(limited: Callable[..., Api]) -> None:
    api = limited(max_upload_mb=1)
    _, token = api.user()
    assert (FIXTURES / "silence.mp4").stat().st_size > 1024 * 1024
    refused(api.upload(token, FIXTURES / "silence.mp4"), 413, "too_large")
    assert stored_objects(api) == [] and count(api.service, "SELECT COUNT(*) FROM jobs") == 0
    assert api.upload(token, FIXTURES / "talk.mp4").status_code == 202  # 0.7 MB fits


def test_video_longer_than_the_plan_allows_is_422(limited: Callable[..., Api]) -> None:
    api = limited(max_video_minutes=1)
    _, token = api.user()
    message = refused(api.upload(token, FIXTURES / "talk.mp4"), 422, "too_long")
    assert message.startswith("Free plan: the video is 1.3 min long; the limit is 1 min")
    assert stored_objects(api) == []


def test_monthly_minutes_402_and_failed_jobs_give_them_back(limited: Callable[..., Api]) -> None:
    api = limited(minutes_per_month=2, concurrent_jobs=5)
    user, token = api.user()
    first = api.upload(token, FIXTURES / "talk.mp4")
    assert first.status_code == 202
    message = refused(api.upload(token, FIXTURES / "talk.mp4"), 402, "quota_exceeded")
    assert "this video needs 1.3 min and 0.7 of 2 min are left this month" in message
    assert count(api.service, "SELECT COUNT(*) FROM jobs") == 1
    assert len(stored_objects(api)) == 1

    # another user has their own minutes
    _, other = api.user()
    assert api.upload(other, FIXTURES / "talk.mp4").status_code == 202

    # a job that failed does not count
    api.service.db.execute("UPDATE jobs SET status = 'failed' WHERE id = ?", (first.json()["id"],))
    assert api.upload(token, FIXTURES / "talk.mp4").status_code == 202
    # deleting a job does not give its minutes back
    job_id = api.get(token, "/api/v1/jobs").json()["jobs"][0]["id"]
    assert api.client.delete(f"/api/v1/jobs/{job_id}", headers=_auth(token)).status_code == 204
    refused(api.upload(token, FIXTURES / "talk.mp4"), 402, "quota_exceeded")
    # a new month starts afresh
    api.service.db.execute(
        "UPDATE plan_usage SET created_at = ? WHERE user_id = ?",
        (reload_user(api.service, user["id"])["created_at"] - timedelta(days=40), user["id"]),
    )
    assert api.upload(token, FIXTURES / "talk.mp4").status_code == 202


def test_concurrent_jobs_over_the_plan_are_429(limited: Callable[..., Api]) -> None:
    api = limited(concurrent_jobs=1)
    _, token = api.user()
    first = api.upload(token, FIXTURES / "talk.mp4")
    assert first.status_code == 202 and first.json()["status"] == "queued"
    message = refused(api.upload(token, FIXTURES / "talk.mp4"), 429, "too_many_jobs")
    assert "1 job(s) are in progress; the plan runs 1 at a time" in message
    assert count(api.service, "SELECT COUNT(*) FROM jobs") == 1
    api.service.db.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (first.json()["id"],))
    assert api.upload(token, FIXTURES / "talk.mp4").status_code == 202


def test_clip_options_within_the_plan(limited: Callable[..., Api]) -> None:
    api = limited(clips_per_job=3, max_clip_seconds=30, concurrent_jobs=5)
    _, token = api.user()
    too_many = api.upload(token, FIXTURES / "talk.mp4", options={"max_clips": 4})
    assert "at most 3 clips per job" in refused(too_many, 400, "plan_limit")
    too_long = api.upload(token, FIXTURES / "talk.mp4", options={"max_seconds": 45})
    assert "clips of at most 30 s" in refused(too_long, 400, "plan_limit")
    assert stored_objects(api) == []

    ok = api.upload(token, FIXTURES / "talk.mp4", options={"min_seconds": 10})
    assert ok.status_code == 202
    job = api.get(token, f"/api/v1/jobs/{ok.json()['id']}").json()
    chosen = {k: v for k, v in job["options"].items() if v is not None}
    assert chosen == {"min_seconds": 10, "max_clips": 3, "max_seconds": 30}


def test_a_paid_plan_that_ended_has_free_limits_at_once(limited: Callable[..., Api]) -> None:
    api = limited(max_video_minutes=1)
    user, token = api.user()
    past = reload_user(api.service, user["id"])["created_at"] - timedelta(hours=1)
    api.service.db.execute(
        "UPDATE users SET plan = 'pro', plan_until = ? WHERE id = ?", (past, user["id"])
    )
    refused(api.upload(token, FIXTURES / "talk.mp4"), 422, "too_long")
    api.service.db.execute(
        "UPDATE users SET plan_until = ? WHERE id = ?", (past + timedelta(days=30), user["id"])
    )
    assert api.upload(token, FIXTURES / "talk.mp4").status_code == 202


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
