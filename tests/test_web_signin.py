"""Sign-in by magic link through the real app: the link read from the outbox, a confirm page
and its POST; expired, reused and tampered links refused; rate limits; the same answer for
known and unknown addresses; the session cookie; CSRF on every form."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kadrio_server.db import utcnow
from kadrio_server.users import create_user, find_user
from kadrio_server.web import magic_links

from .browser.support import (
    Web,
    body_of,
    confirm,
    csrf_of,
    link_in,
    make_web,
    request_link,
    sign_in,
)
from .server.conftest import pg_url  # noqa: F401  (a PostgreSQL database for the session)


@pytest.fixture
def web(tmp_path: Path) -> Web:
    return make_web(tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_web(request: pytest.FixtureRequest, tmp_path: Path) -> Web:
    """The app on SQLite, and on PostgreSQL (a database made for the test session)."""
    if request.param == "sqlite":
        return make_web(tmp_path / "data")
    return make_web(tmp_path / "data", database_url=request.getfixturevalue("pg_url"))


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def _main(html: str) -> str:
    """The page's content without the per-visitor CSRF token."""
    return re.sub(r'value="[^"]+"', 'value=""', html[html.index("<main") :])


def test_sign_in_through_the_emailed_link(any_db_web: Web) -> None:
    web = any_db_web
    browser = web.client()
    sent = request_link(browser, "New.Person@Example.org")
    assert sent.status_code == 200
    assert "new.person@example.org" in sent.text
    # no account until the link is used
    assert find_user(web.service.db, "new.person@example.org") is None

    [message] = web.outbox()
    assert message["To"] == "new.person@example.org"
    assert message["Subject"] == "Your Kadrio sign-in link"
    link = link_in(message)
    token = _token(link)
    assert len(token) == 43  # 32 random bytes, urlsafe base64
    assert "15 minutes" in body_of(message)

    # only the SHA-256 of the token is stored, with a 15-minute lifetime
    address = "new.person@example.org"
    rows = web.service.db.all("SELECT * FROM sign_in_links WHERE email = ?", (address,))
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(rows)
    assert rows[0]["expires_at"] - rows[0]["created_at"] == timedelta(minutes=15)

    # opening the link (as a mail scanner would) does not sign in or use it up
    for _ in range(2):
        page = browser.get(link)
        assert page.status_code == 200
        assert "new.person@example.org" in page.text
        assert "kadrio_session" not in page.headers.get("set-cookie", "")
    assert browser.get("/dashboard").status_code == 303

    done = confirm(browser, link)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard"
    cookie = next(c for c in done.headers.get_list("set-cookie") if "kadrio_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    dashboard = browser.get("/dashboard")
    assert dashboard.status_code == 200
    assert "Your videos" in dashboard.text

    user = find_user(web.service.db, "new.person@example.org")
    assert user is not None and user["plan"] == "free" and user["language"] == "en"
    used = web.service.db.one("SELECT used_at FROM sign_in_links WHERE email = ?", (address,))
    assert used is not None and used["used_at"] is not None
    events = web.service.db.all(
        "SELECT event, user_id FROM techlog WHERE user_id = ?", (user["id"],)
    )
    assert ("sign_in", user["id"]) in [(e["event"], e["user_id"]) for e in events]


def test_reused_link_refused(web: Web) -> None:
    first = web.client()
    request_link(first, "reuse@example.org")
    link = link_in(web.outbox()[-1])
    assert confirm(first, link).status_code == 303

    other = web.client()
    again = other.get(link)
    assert again.status_code == 400
    assert "does not work" in again.text
    # the POST with the used token is refused too, even with a valid CSRF token
    page = other.get("/signin")
    refused = other.post(
        "/signin/confirm", data={"csrf": csrf_of(page.text), "token": _token(link)}
    )
    assert refused.status_code == 400
    assert other.get("/dashboard").status_code == 303  # not signed in
    failed = web.service.db.all("SELECT event FROM techlog WHERE event = 'sign_in_failed'")
    assert len(failed) == 1


def test_expired_link_refused(web: Web) -> None:
    browser = web.client()
    request_link(browser, "late@example.org")
    link = link_in(web.outbox()[-1])
    # the link is 16 minutes old
    past = timedelta(minutes=16)
    web.service.db.execute(
        "UPDATE sign_in_links SET created_at = ?, expires_at = ?",
        (utcnow() - past, utcnow() - past + magic_links.LIFETIME),
    )
    assert browser.get(link).status_code == 400
    page = browser.get("/signin")
    refused = browser.post(
        "/signin/confirm", data={"csrf": csrf_of(page.text), "token": _token(link)}
    )
    assert refused.status_code == 400
    assert find_user(web.service.db, "late@example.org") is None


def test_link_lifetime_boundaries(web: Web) -> None:
    db = web.service.db
    issued = utcnow()
    early = magic_links.issue_link(db, "clock@example.org", "en", now=issued)
    late = magic_links.issue_link(db, "clock@example.org", "en", now=issued)
    almost = issued + timedelta(minutes=14, seconds=59)
    after = issued + timedelta(minutes=15, seconds=1)
    assert magic_links.peek_link(db, late, now=after) is None
    assert magic_links.redeem_link(db, late, now=after) is None
    assert magic_links.redeem_link(db, early, now=almost) is not None
    assert magic_links.redeem_link(db, early, now=almost) is None  # single use


def test_tampered_links_refused(web: Web) -> None:
    browser = web.client()
    request_link(browser, "tamper@example.org")
    link = link_in(web.outbox()[-1])
    token = _token(link)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token[:-2], token + "x", "x" * 43, "", "../../etc/passwd"):
        assert browser.get("/signin/confirm", params={"token": bad}).status_code == 400
        page = browser.get("/signin")
        refused = browser.post("/signin/confirm", data={"csrf": csrf_of(page.text), "token": bad})
        assert refused.status_code == 400, bad
    assert browser.get("/dashboard").status_code == 303
    # the real link still works afterwards
    assert confirm(browser, link).status_code == 303


def test_same_answer_for_known_and_unknown_addresses(web: Web) -> None:
    create_user(web.service.db, "known@example.org")
    known = request_link(web.client(), "known@example.org")
    unknown = request_link(web.client(), "unknown@example.org")
    assert known.status_code == unknown.status_code == 200
    assert _main(known.text).replace("known@", "X@") == _main(unknown.text).replace(
        "unknown@", "X@"
    )
    assert [m["To"] for m in web.outbox()] == ["known@example.org", "unknown@example.org"]
    assert find_user(web.service.db, "unknown@example.org") is None


def test_bad_address_is_a_clear_error(web: Web) -> None:
    answer = request_link(web.client(), "not-an-address")
    assert answer.status_code == 400
    assert "does not look like an email address" in answer.text
    assert web.outbox() == []


def test_rate_limits_per_address_and_per_ip(tmp_path: Path) -> None:
    web = make_web(
        tmp_path / "data", service={"web": {"sign_in_per_address": 2, "sign_in_per_ip": 4}}
    )
    browser = web.client()
    assert request_link(browser, "busy@example.org").status_code == 200
    assert request_link(browser, "busy@example.org").status_code == 200
    limited = request_link(browser, "busy@example.org")
    assert limited.status_code == 429
    assert "Too many sign-in requests" in limited.text
    assert len(web.outbox()) == 2
    # other addresses from the same IP: two more, then the IP is limited
    assert request_link(browser, "a@example.org").status_code == 200
    assert request_link(browser, "b@example.org").status_code == 200
    assert request_link(browser, "c@example.org").status_code == 429
    assert len(web.outbox()) == 4
    # neither addresses nor IPs are stored as such
    keys = web.service.db.all("SELECT scope, key_hash FROM sign_in_attempts")
    assert {k["scope"] for k in keys} == {"address", "ip"}
    assert not any("@" in k["key_hash"] or "testclient" in k["key_hash"] for k in keys)


def test_emails_in_the_users_language(web: Web) -> None:
    create_user(web.service.db, "ru@example.org", language="ru")
    request_link(web.client(), "ru@example.org")
    request_link(web.client(**{"Accept-Language": "ru-RU,ru;q=0.9"}), "new-ru@example.org")
    known, new = web.outbox()
    assert known["Subject"] == new["Subject"] == "Ссылка для входа в Kadrio"
    assert "15 минут" in body_of(new)
    assert confirm(web.client(), link_in(new)).status_code == 303
    user = find_user(web.service.db, "new-ru@example.org")
    assert user is not None and user["language"] == "ru"


def test_session_rotates_at_sign_in_and_ends_at_sign_out(web: Web) -> None:
    browser = web.client()
    # an anonymous visitor who chose a language already has a session cookie
    page = browser.get("/")
    browser.post("/language", data={"csrf": csrf_of(page.text), "lang": "ru", "next": "/"})
    before = browser.cookies.get("kadrio_session")
    assert before
    sign_in(web, browser, "rotate@example.org")
    first = browser.cookies.get("kadrio_session")
    assert first and first != before
    # the next link (asked for on another device) is used in this browser, still signed in
    request_link(web.client(), "rotate@example.org")
    assert confirm(browser, link_in(web.outbox()[-1])).status_code == 303
    second = browser.cookies.get("kadrio_session")
    assert second and second != first
    # one server-side session: signing in again ended the previous one
    assert web.service.db.one("SELECT COUNT(*) AS n FROM web_sessions")["n"] == 1

    stolen = web.client()
    stolen.cookies.set("kadrio_session", first)
    assert stolen.get("/dashboard").status_code == 303
    copy = web.client()
    copy.cookies.set("kadrio_session", second)
    assert copy.get("/dashboard").status_code == 200

    page = browser.get("/dashboard")
    out = browser.post("/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert browser.get("/dashboard").status_code == 303
    # the copied cookie no longer works either: the session was deleted on the server
    assert copy.get("/dashboard").status_code == 303
    assert web.service.db.one("SELECT COUNT(*) AS n FROM web_sessions")["n"] == 0


def test_secure_cookies_when_the_public_url_is_https(tmp_path: Path) -> None:
    web = make_web(tmp_path / "data", service={"public_url": "https://kadrio.example"})
    browser = web.client("https://kadrio.example")  # behind the https proxy
    page = browser.get("/signin")
    assert "Secure" in page.headers["set-cookie"]  # the anonymous CSRF cookie
    request_link(browser, "s@example.org")
    body = body_of(web.outbox()[-1])
    assert "https://kadrio.example/signin/confirm?token=" in body
    done = confirm(browser, link_in(web.outbox()[-1]))
    session = next(c for c in done.headers.get_list("set-cookie") if "kadrio_session=" in c)
    assert "Secure" in session and "HttpOnly" in session


def test_forms_without_the_csrf_token_are_refused(web: Web) -> None:
    browser = web.client()
    page = browser.get("/signin")
    token = csrf_of(page.text)
    assert browser.post("/signin", data={"email": "x@example.org"}).status_code == 403
    assert (
        browser.post("/signin", data={"email": "x@example.org", "csrf": "forged"}).status_code
        == 403
    )
    # a token from another visitor's page is not this visitor's
    stranger = web.client()
    foreign = csrf_of(stranger.get("/signin").text)
    assert (
        browser.post("/signin", data={"email": "x@example.org", "csrf": foreign}).status_code == 403
    )
    # the right token from another site's page (Origin) is refused too
    cross = browser.post(
        "/signin",
        data={"email": "x@example.org", "csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert "form has expired" in cross.text
    assert web.outbox() == []

    sign_in(web, browser, "csrf@example.org")
    assert browser.post("/signout", data={}).status_code == 403
    assert browser.get("/dashboard").status_code == 200  # still signed in
    assert browser.post("/language", data={"lang": "ru"}).status_code == 403
    assert browser.post("/account/tokens", data={}).status_code == 403
    # the anonymous token stops working once signed in (the session has its own)
    assert browser.post("/signout", data={"csrf": token}).status_code == 403
    page = browser.get("/dashboard")
    assert browser.post("/signout", data={"csrf": csrf_of(page.text)}).status_code == 303
