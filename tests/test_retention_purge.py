"""Retention as the privacy policy promises it, checked to the hour with an injected clock:
Free 7 days after upload; Starter, Pro, Business until the paid period ends + 14 / 30 / 90 days;
expiry moves the account to Free retention; technical logs go after 30 days; closed accounts
are erased. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from kadrio_server import accounts, techlog
from kadrio_server.plans import Standing, load_plans, retention_until
from kadrio_server.retention import purge
from kadrio_server.service import Service

from .billing_helpers import (  # noqa: F401  (own_pg: a fixture)
    T0,
    body,
    count,
    job_left,
    mails_of_kind,
    new_service,
    own_pg,
    reload_user,
    stored_job,
    user_on,
)
from .conftest import FIXTURES, run_kadrio
from .server.conftest import Api, assert_erased, make_api  # noqa: F401  (make_api: a fixture)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_service(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Service]:
    services: list[Service] = []

    def build() -> Service:
        url = request.getfixturevalue("own_pg") if request.param == "postgresql" else None
        service = new_service(tmp_path / f"data{len(services)}", url)
        services.append(service)
        return service

    yield build
    for service in services:
        service.close()


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Service:
    service = new_service(tmp_path / "data")
    yield service
    service.close()


def test_free_plan_keeps_files_seven_days_after_upload(make_service: Callable[[], Service]) -> None:
    service = make_service()
    user = user_on(service, "free")
    first = stored_job(service, user, T0)
    second = stored_job(service, user, T0 + 3 * DAY)
    plans = load_plans(service.settings)
    assert retention_until(plans, T0, Standing.of(user)) == T0 + 7 * DAY

    report = purge(service, T0 + 7 * DAY - HOUR)
    assert report.expired_jobs == []
    assert job_left(service, user["id"], first) and job_left(service, user["id"], second)

    report = purge(service, T0 + 7 * DAY)
    assert report.expired_jobs == [first] and report.failed_jobs == []
    assert not job_left(service, user["id"], first)
    assert job_left(service, user["id"], second)

    purge(service, T0 + 10 * DAY - HOUR)
    assert job_left(service, user["id"], second)
    purge(service, T0 + 10 * DAY)
    assert not job_left(service, user["id"], second)


@pytest.mark.parametrize(("plan", "grace_days"), [("starter", 14), ("pro", 30), ("business", 90)])
def test_paid_plan_keeps_files_until_the_period_ends_plus_grace(
    sqlite_service: Service, plan: str, grace_days: int
) -> None:
    _paid_plan_retention(sqlite_service, plan, grace_days)


def test_paid_plan_retention_on_both_engines(make_service: Callable[[], Service]) -> None:
    _paid_plan_retention(make_service(), "starter", 14)


def _paid_plan_retention(service: Service, plan: str, grace_days: int) -> None:
    end = T0 + 30 * DAY
    grace = timedelta(days=grace_days)
    user = user_on(service, plan, plan_until=end, language="ru")
    job = stored_job(service, user, T0)
    plans = load_plans(service.settings)
    assert retention_until(plans, T0, Standing.of(user)) == end + grace

    # far past the Free rule while the period runs: kept
    assert purge(service, end - HOUR).expired_jobs == []
    assert job_left(service, user["id"], job)
    assert reload_user(service, user["id"])["plan"] == plan

    # the period ends: the account is on Free now, its files keep the plan's grace
    report = purge(service, end)
    assert report.expired_plans == [user["id"]] and report.expired_jobs == []
    moved = reload_user(service, user["id"])
    assert (moved["plan"], moved["plan_until"], moved["keep_until"]) == ("free", None, end + grace)
    assert retention_until(plans, T0, Standing.of(moved)) == end + grace
    expired = mails_of_kind(service, "expired")
    assert len(expired) == 1 and expired[0]["To"] == user["email"]
    assert "закончился" in expired[0]["Subject"]  # the user's language

    assert purge(service, end + grace - HOUR).expired_jobs == []
    assert job_left(service, user["id"], job)
    assert purge(service, end + grace).expired_jobs == [job]
    assert not job_left(service, user["id"], job)

    # uploads after that follow the Free rule: 7 days after the upload
    later = end + grace + 2 * DAY
    new_job = stored_job(service, user, later)
    assert retention_until(plans, later, Standing.of(moved)) == later + 7 * DAY
    assert purge(service, later + 7 * DAY - HOUR).expired_jobs == []
    assert purge(service, later + 7 * DAY).expired_jobs == [new_job]
    assert len(mails_of_kind(service, "expired")) == 1  # never twice


def test_ending_soon_email_three_days_before_once(sqlite_service: Service) -> None:
    service = sqlite_service
    end = T0 + 30 * DAY
    user = user_on(service, "pro", plan_until=end)
    assert purge(service, end - 3 * DAY - HOUR).ending_notices == []
    assert purge(service, end - 3 * DAY).ending_notices == [user["id"]]
    assert purge(service, end - 2 * DAY).ending_notices == []
    sent = mails_of_kind(service, "ending_soon")
    assert len(sent) == 1
    assert sent[0]["Subject"] == "Your Kadrio Pro plan ends on July 1, 2026"
    assert "July 31, 2026" in body(sent[0])  # files kept until the end + 30 days


def test_operator_given_plan_without_end_keeps_everything(sqlite_service: Service) -> None:
    user = user_on(sqlite_service, "business", plan_until=None)
    job = stored_job(sqlite_service, user, T0)
    plans = load_plans(sqlite_service.settings)
    assert retention_until(plans, T0, Standing.of(user)) is None
    assert purge(sqlite_service, T0 + 3650 * DAY).expired_jobs == []
    assert job_left(sqlite_service, user["id"], job)


def test_technical_logs_deleted_after_30_days(make_service: Callable[[], Service]) -> None:
    service = make_service()
    user = user_on(service)
    techlog.record(service.db, "sign_in", "203.0.113.7", "Firefox/140", user["id"], now=T0)
    techlog.record(service.db, "upload", "203.0.113.7", "Firefox/140", user["id"], now=T0 + DAY)
    assert purge(service, T0 + 30 * DAY - HOUR).techlog_deleted == 0
    assert count(service, "SELECT COUNT(*) AS n FROM techlog") == 2
    assert purge(service, T0 + 30 * DAY).techlog_deleted == 1
    rows = service.db.all("SELECT event FROM techlog")
    assert [r["event"] for r in rows] == ["upload"]
    assert purge(service, T0 + 31 * DAY).techlog_deleted == 1
    assert count(service, "SELECT COUNT(*) AS n FROM techlog") == 0


def test_closed_account_is_erased_by_the_next_purge(make_service: Callable[[], Service]) -> None:
    service = make_service()
    keep = user_on(service, "free")
    kept_job = stored_job(service, keep, T0)
    user = user_on(service, "pro", plan_until=T0 + 30 * DAY)
    job = stored_job(service, user, T0)
    techlog.record(service.db, "upload", "198.51.100.2", "Chrome/150", user["id"], now=T0)
    service.db.execute(
        "INSERT INTO invoices (number, user_id, plan, period_days, amount_kopecks, currency, "
        "provider, status, created_at, paid_at) VALUES (41, ?, 'pro', 30, 249000, 'RUB', "
        "'robokassa', 'paid', ?, ?)",
        (user["id"], T0, T0),
    )

    assert accounts.close_account(service, user["id"], now=T0 + HOUR)
    assert not accounts.close_account(service, user["id"], now=T0 + 2 * HOUR)  # once
    confirmation = mails_of_kind(service, "account_deleted")
    assert len(confirmation) == 1 and confirmation[0]["To"] == user["email"]
    assert "30 days" in body(confirmation[0])

    report = purge(service, T0 + 2 * HOUR)  # the next hourly run, well within 30 days
    assert report.erased_accounts == [user["id"]] and report.overdue_accounts == []
    assert not job_left(service, user["id"], job)
    assert list(service.storage.list(f"users/{user['id']}/")) == []
    for table in (
        "users",
        "api_tokens",
        "consents",
        "techlog",
        "plan_usage",
        "mailings",
        "web_sessions",
        "clips",
        "jobs",
    ):
        column = "id" if table == "users" else "user_id"
        assert (
            count(service, f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = ?", (user["id"],))
            == 0
        ), table
    invoice = service.db.one("SELECT * FROM invoices WHERE number = 41")
    assert invoice is not None
    assert (invoice["user_id"], invoice["plan"], invoice["period_days"]) == (None, None, None)
    assert (invoice["amount_kopecks"], invoice["paid_at"]) == (249000, T0)
    # the other account is untouched
    assert job_left(service, keep["id"], kept_job)
    assert reload_user(service, keep["id"])["deactivated_at"] is None


def test_dry_run_changes_nothing(sqlite_service: Service) -> None:
    service = sqlite_service
    user = user_on(service, "starter", plan_until=T0 + DAY)
    job = stored_job(service, user, T0)
    closed = user_on(service)
    accounts.close_account(service, closed["id"], now=T0)
    techlog.record(service.db, "sign_in", "192.0.2.1", "curl", user["id"], now=T0)
    before = len(mails_of_kind(service, "account_deleted"))

    report = purge(service, T0 + 400 * DAY, dry_run=True)
    assert report.expired_plans == [user["id"]]
    assert report.expired_jobs == [job]
    assert report.techlog_deleted == 1
    assert report.erased_accounts == [closed["id"]]
    assert reload_user(service, user["id"])["plan"] == "starter"
    assert job_left(service, user["id"], job)
    assert reload_user(service, closed["id"])["deactivated_at"] is not None
    assert count(service, "SELECT COUNT(*) AS n FROM techlog") == 1
    assert len(mails_of_kind(service, "account_deleted")) == before
    assert mails_of_kind(service, "expired") == []


def test_hourly_periodic_task_runs_the_purge(sqlite_service: Service) -> None:
    from datetime import datetime

    huey = sqlite_service.queue.huey

    def due(moment: datetime) -> bool:  # what the consumer's scheduler asks every minute
        return "kadrio.purge" in [t.name for t in huey.read_periodic(moment)]

    assert due(datetime(2026, 6, 1, 10, 5)) and not due(datetime(2026, 6, 1, 10, 6))
    start = datetime(2026, 6, 1)
    assert sum(due(start + timedelta(minutes=m)) for m in range(24 * 60)) == 24
    task = sqlite_service.queue.purge
    user = user_on(sqlite_service)
    job = stored_job(sqlite_service, user, T0)  # long ago: the task runs at the real now
    task.call_local()
    assert not job_left(sqlite_service, user["id"], job)


def test_expired_job_goes_with_the_delete_cascade(make_api: Callable[..., Api]) -> None:  # noqa: F811
    """A job really processed (clips, previews, transcript) is erased like 'Delete' erases."""
    from .server.conftest import CLIP_OPTIONS

    api = make_api()
    user, token = api.user()
    created = api.upload(token, FIXTURES / "talk.mp4", options=CLIP_OPTIONS | {"max_clips": 1})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert api.job(token, job_id)["status"] == "done"
    uploaded = api.service.db.one("SELECT created_at FROM jobs WHERE id = ?", (job_id,))
    assert uploaded is not None
    keys = list(api.service.storage.list(f"users/{user['id']}/jobs/{job_id}/"))
    assert any(k.endswith(".mp4") for k in keys) and any(k.endswith(".jpg") for k in keys)
    assert any(k.endswith("transcript.json") for k in keys)

    assert purge(api.service, uploaded["created_at"] + 7 * DAY - HOUR).expired_jobs == []
    assert purge(api.service, uploaded["created_at"] + 7 * DAY).expired_jobs == [job_id]
    assert_erased(api.service, user["id"], job_id)
    assert api.get(token, f"/api/v1/jobs/{job_id}").status_code == 404


def test_purge_command(sqlite_service: Service, tmp_path: Path) -> None:
    service = sqlite_service
    user = user_on(service)
    job = stored_job(service, user, T0)
    env = {"KADRIO_DATA_DIR": str(service.settings.data_dir)}
    at = (T0 + 7 * DAY).isoformat()

    dry = run_kadrio("purge", "--at", at, "--dry-run", env=env)
    assert dry.code == 0, dry.stderr
    assert "dry run" in dry.stdout and "expired jobs deleted (would): 1" in dry.stdout
    assert job_left(service, user["id"], job)

    early = run_kadrio("purge", "--at", (T0 + 7 * DAY - HOUR).isoformat(), env=env)
    assert early.code == 0 and "expired jobs deleted (did): 0" in early.stdout
    done = run_kadrio("purge", "--at", at, env=env)
    assert done.code == 0, done.stderr
    assert "expired jobs deleted (did): 1" in done.stdout
    assert not job_left(service, user["id"], job)

    bad = run_kadrio("purge", "--at", "next tuesday", env=env)
    assert bad.code == 2 and bad.stderr.count("\n") == 1 and "ISO 8601" in bad.stderr
