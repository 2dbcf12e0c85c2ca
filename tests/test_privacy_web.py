"""The promises as a browser meets them (no JavaScript here; test_privacy_cookies_browser runs
Chromium): consent to personal data at sign-up, IP and agent logged at sign-in, deleting the
account from the dashboard, the plan page, display-only payment return pages, and the cookie
banner with the Content-Security-Policy that follows the choice."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kadrio_server import privacy

from .billing_helpers import body, mails_of_kind, outbox, reload_user, settings_for, signed_result
from .server.conftest import Api, make_api  # noqa: F401  (make_api: a fixture)

AGENT = {"User-Agent": "Mozilla/5.0 (Android 15; Mobile) Firefox/140.0"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found[1]


def sign_in(api: Api, email: str, consent: bool = True) -> Any:
    """The whole magic-link flow; returns the last response."""
    form = api.client.get("/signin")
    fields = {"email": email, "csrf": csrf_of(form.text), "next": "/dashboard"}
    if consent:
        fields["pd_consent"] = "yes"
    sent = api.client.post("/signin", data=fields, headers=AGENT)
    if sent.status_code != 200:
        return sent
    mail = [m for m in outbox(api.service) if m["To"] == email][-1]
    link = re.search(r"https?://\S+/signin/confirm\?\S+", body(mail))
    assert link, body(mail)
    target = urlsplit(link[0])
    page = api.client.get(f"{target.path}?{target.query}")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    return api.client.post(
        "/signin/confirm",
        data={"token": token[1], "csrf": csrf_of(page.text), "next": "/dashboard"},
        headers=AGENT,
    )


@pytest.fixture
def site(make_api: Callable[..., Api], tmp_path: Path) -> Api:  # noqa: F811
    return make_api(settings_for(tmp_path / "data"))


def test_sign_up_records_the_personal_data_consent_and_the_sign_in(site: Api) -> None:
    refused = sign_in(site, "new.person@example.org", consent=False)
    assert refused.status_code == 400
    assert "consent to the processing of personal data" in refused.text
    assert site.service.db.one("SELECT id FROM users") is None

    done = sign_in(site, "new.person@example.org")
    assert done.status_code == 200 and done.url.path == "/dashboard"
    user = site.service.db.one("SELECT * FROM users WHERE email = 'new.person@example.org'")
    assert user is not None
    consents = site.service.db.all(
        "SELECT kind, version FROM consents WHERE user_id = ?", (user["id"],)
    )
    assert consents == [
        {"kind": "personal_data", "version": privacy.consent_version("personal_data")}
    ]
    log = site.service.db.all(
        "SELECT event, ip, user_agent FROM techlog WHERE user_id = ?", (user["id"],)
    )
    assert log == [{"event": "sign_in", "ip": "testclient", "user_agent": AGENT["User-Agent"]}]

    # signing in again records nothing new
    site.client.cookies.clear()
    assert sign_in(site, "new.person@example.org").url.path == "/dashboard"
    assert len(site.service.db.all("SELECT id FROM consents WHERE user_id = ?", (user["id"],))) == 1


def test_delete_account_from_the_dashboard(site: Api) -> None:
    user, token = site.user(email="leaving@example.org", language="en")
    assert sign_in(site, user["email"]).url.path == "/dashboard"
    page = site.client.get("/account/data")
    assert 'href="/account/delete"' in page.text
    confirm = site.client.get("/account/delete")
    assert confirm.status_code == 200 and "leaving@example.org" in confirm.text
    csrf = csrf_of(confirm.text)

    assert site.client.post("/account/delete", data={"understood": "yes"}).status_code == 403
    unsure = site.client.post("/account/delete", data={"csrf": csrf})
    assert unsure.status_code == 400
    assert reload_user(site.service, user["id"])["deactivated_at"] is None

    closed = site.client.post("/account/delete", data={"csrf": csrf, "understood": "yes"})
    assert closed.status_code == 200 and 'id="account-deleted"' in closed.text
    assert reload_user(site.service, user["id"])["deactivated_at"] is not None
    # this browser, any other session and the API token stop working at once
    after = site.client.get("/dashboard", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/signin")
    assert site.get(token, "/api/v1/me").status_code == 401
    assert site.service.db.all("SELECT * FROM web_sessions WHERE user_id = ?", (user["id"],)) == []
    (mail,) = mails_of_kind(site.service, "account_deleted")
    assert mail["To"] == "leaving@example.org"
    # signing in again is refused until the account is erased
    site.client.cookies.clear()
    again = sign_in(site, "leaving@example.org")
    assert again.status_code == 403


def test_plan_page_checkout_and_display_only_return_pages(site: Api) -> None:
    user, _ = site.user(email="buyer@example.org")
    assert sign_in(site, user["email"]).url.path == "/dashboard"
    page = site.client.get("/account/plan")
    assert (
        page.status_code == 200 and 'id="pay-pro"' in page.text and 'id="pay-free"' not in page.text
    )
    paid = site.client.post(
        "/account/plan/checkout",
        data={"csrf": csrf_of(page.text), "plan": "pro"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert paid.headers["location"].startswith("https://auth.robokassa.ru/Merchant/Index.aspx?")
    number = int(re.search(r"InvId=(\d+)", paid.headers["location"])[1])  # type: ignore[index]
    assert site.client.post("/account/plan/checkout", data={"plan": "pro"}).status_code == 403

    # coming back to SuccessURL grants nothing
    success = site.client.get(f"/billing/success?InvId={number}&OutSum=2490.00&Culture=en")
    assert success.status_code == 200 and "waiting for Robokassa to confirm" in success.text
    assert site.client.post("/billing/success", data={"InvId": str(number)}).status_code == 200
    assert reload_user(site.service, user["id"])["plan"] == "free"
    fail = site.client.get(f"/billing/fail?InvId={number}")
    assert fail.status_code == 200 and "was not paid" in fail.text
    # the notification does
    ok = site.client.post("/billing/robokassa/result", data=signed_result(number, "2490.00"))
    assert ok.text == f"OK{number}"
    assert (
        "is paid and your plan is active"
        in site.client.get(f"/billing/success?InvId={number}").text
    )
    assert "Your plan: Pro" in site.client.get("/account/plan").text
    # another user's invoice number shows nothing of it
    site.client.cookies.clear()
    other, _ = site.user(email="other@example.org")
    sign_in(site, other["email"])
    assert "waiting" in site.client.get(f"/billing/success?InvId={number}").text


def test_no_counter_no_banner(site: Api) -> None:
    home = site.client.get("/")
    assert "cookie-banner" not in home.text and "/cookies" not in home.text
    assert "yandex" not in home.text and "yandex" not in home.headers["content-security-policy"]
    assert site.client.get("/cookies").status_code == 404


def test_banner_choice_and_content_security_policy(
    make_api: Callable[..., Api],  # noqa: F811
    tmp_path: Path,
) -> None:
    api = make_api(settings_for(tmp_path / "data", privacy={"metrica_counter_id": "98765432"}))
    home = api.client.get("/")
    assert 'id="cookie-banner"' in home.text
    assert "metrica.js" not in home.text and "mc.yandex.ru" not in home.text
    assert "mc.yandex.ru" not in home.headers["content-security-policy"]
    assert set(api.client.cookies.keys()) <= {"kadrio_csrf", "kadrio_session"}

    necessary = api.client.post(
        "/cookies", data={"csrf": csrf_of(home.text), "choice": "necessary", "next": "/"}
    )
    assert necessary.status_code == 200
    assert 'id="cookie-banner"' not in necessary.text and "metrica.js" not in necessary.text
    assert "mc.yandex.ru" not in necessary.headers["content-security-policy"]
    assert set(api.client.cookies.keys()) <= {"kadrio_csrf", "kadrio_session"}

    settings_page = api.client.get("/cookies")
    assert "Yandex Metrica is off" in settings_page.text
    accepted = api.client.post(
        "/cookies", data={"csrf": csrf_of(settings_page.text), "choice": "all", "next": "/privacy"}
    )
    assert accepted.url.path == "/privacy"
    assert '<script src="/static/metrica.js" data-counter="98765432" defer>' in accepted.text
    csp = accepted.headers["content-security-policy"]
    assert "script-src 'self' https://mc.yandex.ru https://yastatic.net" in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert set(api.client.cookies.keys()) <= {"kadrio_csrf", "kadrio_session"}
    # and back
    back = api.client.post(
        "/cookies", data={"csrf": csrf_of(accepted.text), "choice": "necessary", "next": "/"}
    )
    assert "metrica.js" not in back.text
    assert "mc.yandex.ru" not in back.headers["content-security-policy"]
    assert api.client.post("/cookies", data={"choice": "all"}).status_code == 403
