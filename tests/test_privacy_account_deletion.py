"""Deleting an account: it stops working at once (tokens, sessions), a confirmation email goes
out, and the next periodic purge erases everything but the accounting minimum of its payments;
by API, and by the operator's `kadrio users delete EMAIL`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kadrio_server.auth import create_token
from kadrio_server.retention import purge

from .billing_helpers import body, count, mails_of_kind, reload_user, settings_for, signed_result
from .conftest import FIXTURES, run_kadrio
from .server.conftest import Api, auth, make_api  # noqa: F401  (make_api: a fixture)


def queued_api(build: Callable[..., Api], tmp_path: Path) -> Api:
    return build(settings_for(tmp_path / "data", queue_url=f"sqlite:///{tmp_path / 'q.db'}"))


def test_delete_account_through_the_api(make_api: Callable[..., Api], tmp_path: Path) -> None:  # noqa: F811
    api = queued_api(make_api, tmp_path)
    user, token = api.user(language="ru")
    second, _ = create_token(api.service.db, user["email"])
    _, other_token = api.user()
    job = api.upload(token, FIXTURES / "talk.mp4").json()["id"]
    other_job = api.upload(other_token, FIXTURES / "talk.mp4").json()["id"]
    bought = api.client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=auth(token))
    number = bought.json()["invoice"]
    assert api.client.post("/billing/robokassa/result", data=signed_result(number, "2490.00"))

    assert api.client.delete("/api/v1/me", headers=auth(token)).status_code == 202
    # at once: no token works, the jobs are gone from view, a confirmation is sent
    for t in (token, second):
        assert api.get(t, "/api/v1/jobs").status_code == 401
    closed = reload_user(api.service, user["id"])
    assert closed["deactivated_at"] is not None
    assert (
        count(
            api.service,
            "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND deleted_at IS NULL",
            (user["id"],),
        )
        == 0
    )
    (mail,) = mails_of_kind(api.service, "account_deleted")
    assert mail["To"] == user["email"] and "30 дней" in body(mail)
    assert "номер счёта, сумма и дата" in body(mail)

    report = purge(api.service)
    assert report.erased_accounts == [user["id"]]
    assert api.service.db.one("SELECT id FROM users WHERE id = ?", (user["id"],)) is None
    assert api.service.db.one("SELECT id FROM jobs WHERE id = ?", (job,)) is None
    assert list(api.service.storage.list(f"users/{user['id']}/")) == []
    invoice = api.service.db.one("SELECT * FROM invoices WHERE number = ?", (number,))
    assert invoice is not None
    kept = {k for k, v in invoice.items() if v is not None}
    assert kept == {
        "number",
        "amount_kopecks",
        "currency",
        "provider",
        "status",
        "created_at",
        "paid_at",
    }
    # the other account is untouched and the address can sign up again
    assert api.get(other_token, f"/api/v1/jobs/{other_job}").status_code == 200
    again, again_token = api.user(email=user["email"])
    assert again["id"] != user["id"] and again["plan"] == "free"
    assert api.get(again_token, "/api/v1/jobs").json()["jobs"] == []


def test_operator_deletes_an_account(make_api: Callable[..., Api], tmp_path: Path) -> None:  # noqa: F811
    api = queued_api(make_api, tmp_path)
    user, token = api.user()
    env = {"KADRIO_DATA_DIR": str(api.service.settings.data_dir)}
    done = run_kadrio("users", "delete", user["email"].upper(), env=env)
    assert done.code == 0, done.stderr
    assert "closed" in done.stdout and "confirmation email" in done.stdout
    assert api.get(token, "/api/v1/me").status_code == 401
    assert len(mails_of_kind(api.service, "account_deleted")) == 1
    again = run_kadrio("users", "delete", user["email"], env=env)
    assert again.code == 0 and "closed already" in again.stdout
    assert len(mails_of_kind(api.service, "account_deleted")) == 1
    unknown = run_kadrio("users", "delete", "nobody@example.org", env=env)
    assert unknown.code == 2 and unknown.stderr.strip() == (
        "kadrio: error: no user with the email nobody@example.org"
    )
