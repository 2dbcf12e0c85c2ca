"""Who is asking: the signed-in user (a server-side session), the page language, the CSRF token.

Two cookies, both HttpOnly, SameSite=Lax, Secure behind https:

- ``kadrio_session``: signed (itsdangerous) ``{"sid": ..., "lang": ...}``. ``sid`` is 32 random
  bytes naming a row of ``web_sessions`` (only its SHA-256 is stored): signing out deletes the
  row, so a copied cookie stops working at once. A new ``sid`` is issued at every sign-in.
  ``lang`` is the language the visitor chose with the switch (absent: Accept-Language decides).
- ``kadrio_csrf``: for visitors not signed in, a signed random token. Signed-in visitors'
  token is derived from their session (HMAC), so it changes with the session too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..auth import hash_token
from ..db import Database, Row, utcnow
from . import i18n
from .site import Site, site_of

SESSION_COOKIE = "kadrio_session"
CSRF_COOKIE = "kadrio_csrf"
LANG_DAYS = 365  # the lifetime of a cookie that holds only the chosen language
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass
class Visitor:
    user: Row | None
    sid: str | None
    lang: str
    chosen_lang: str | None
    csrf: str
    set_csrf_cookie: bool = False
    session_payload: dict[str, str] | None = None  # to write on the response
    analytics: str | None = None  # the cookie banner's answer: "all", "necessary" or none yet

    @property
    def signed_in(self) -> bool:
        return self.user is not None


def _serializer(site: Site) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(site.secret, salt="kadrio.session")


def _csrf_signer(site: Site) -> Signer:
    return Signer(site.secret, salt="kadrio.csrf")


def session_csrf(site: Site, sid: str) -> str:
    return site.digest("csrf", sid)


def read_session_cookie(site: Site, request: Request) -> dict[str, Any]:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(site).loads(raw, max_age=LANG_DAYS * 86400)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def session_user(db: Database, sid: str) -> Row | None:
    now = utcnow()
    row = db.one(
        "SELECT u.*, s.last_seen_at AS session_last_seen_at FROM web_sessions s "
        "JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?",
        (hash_token(sid), now),
    )
    if row is None:
        return None
    if now - row.pop("session_last_seen_at") > _TOUCH_EVERY:
        db.execute(
            "UPDATE web_sessions SET last_seen_at = ? WHERE id_hash = ?", (now, hash_token(sid))
        )
    return row


async def visitor(request: Request) -> Visitor:
    """The visitor of this request (looked up once, then kept on ``request.state``)."""
    cached = getattr(request.state, "visitor", None)
    if cached is not None:
        return cached
    site = site_of(request)
    data = read_session_cookie(site, request)
    sid = data.get("sid") if isinstance(data.get("sid"), str) else None
    user = await run_in_threadpool(session_user, site.service.db, sid) if sid else None
    if user is None:
        sid = None
    chosen = i18n.supported(data.get("lang") if isinstance(data.get("lang"), str) else None)
    found = Visitor(
        user=user,
        sid=sid,
        lang=language_of(request, user, chosen),
        chosen_lang=chosen,
        csrf="",
        analytics=data.get("analytics") if data.get("analytics") in ("all", "necessary") else None,
    )
    _attach_csrf(site, request, found)
    request.state.visitor = found
    return found


def anonymous(request: Request) -> Visitor:
    """A visitor read from cookies and headers only (no database): for the 500 page."""
    site = site_of(request)
    chosen = i18n.supported(read_session_cookie(site, request).get("lang"))
    return Visitor(None, None, language_of(request, None, chosen), chosen, csrf="")


def language_of(request: Request, user: Row | None, chosen: str | None) -> str:
    if user is not None and i18n.supported(user.get("language")):
        return user["language"]
    return chosen or i18n.negotiate(request.headers.get("accept-language"))


def _attach_csrf(site: Site, request: Request, found: Visitor) -> None:
    if found.sid is not None:
        found.csrf = session_csrf(site, found.sid)
        return
    signer = _csrf_signer(site)
    raw = request.cookies.get(CSRF_COOKIE, "")
    try:
        signer.unsign(raw)
        found.csrf = raw
    except BadSignature:
        found.csrf = signer.sign(secrets.token_urlsafe(32)).decode()
        found.set_csrf_cookie = True


def csrf_ok(found: Visitor, submitted: str | None) -> bool:
    """The form's token matches this visitor's, and the visitor's own came from a cookie."""
    if not submitted or not found.csrf or found.set_csrf_cookie:
        return False
    return hmac.compare_digest(submitted.encode(), found.csrf.encode())


# -- sessions -------------------------------------------------------------------------------


def start_session(site: Site, user_id: str, previous_sid: str | None) -> str:
    """A new session id for the user (the browser's previous session, if any, is ended)."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    days = site.settings.service.web.session_days
    with site.service.db.transaction() as tx:
        if previous_sid:
            tx.execute("DELETE FROM web_sessions WHERE id_hash = ?", (hash_token(previous_sid),))
        tx.execute("DELETE FROM web_sessions WHERE user_id = ? AND expires_at < ?", (user_id, now))
        tx.execute(
            "INSERT INTO web_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (hash_token(sid), user_id, now, now, now + timedelta(days=days)),
        )
    return sid


def end_session(db: Database, sid: str) -> None:
    db.execute("DELETE FROM web_sessions WHERE id_hash = ?", (hash_token(sid),))


def user_sessions(db: Database, user_id: str) -> list[Row]:
    return db.all(
        "SELECT created_at, last_seen_at, expires_at FROM web_sessions "
        "WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC",
        (user_id, utcnow()),
    )


# -- cookies on the response ----------------------------------------------------------------


def remember(found: Visitor, sid: str | None, lang: str | None) -> None:
    """Make the response set the session cookie to ``sid`` and ``lang`` (cleared when both
    are None); the visitor is updated so the rest of the request sees it."""
    found.sid, found.chosen_lang = sid, lang
    pairs = (("sid", sid), ("lang", lang), ("analytics", found.analytics))
    found.session_payload = {k: v for k, v in pairs if v}
    if sid is not None:
        found.set_csrf_cookie = False  # the session's own token replaces the cookie's


def apply_cookies(site: Site, request: Request, found: Visitor, response: Response) -> Response:
    """Write the visitor's pending cookies on ``response``."""
    secure = site.secure_cookies(request)
    flags: dict[str, Any] = {"path": "/", "secure": secure, "httponly": True, "samesite": "lax"}
    payload = found.session_payload
    if payload is not None:
        if payload:
            days = site.settings.service.web.session_days if "sid" in payload else LANG_DAYS
            value = _serializer(site).dumps(payload)
            response.set_cookie(SESSION_COOKIE, value, max_age=days * 86400, **flags)
        else:
            response.delete_cookie(SESSION_COOKIE, **flags)
        if "sid" in payload and request.cookies.get(CSRF_COOKIE):
            response.delete_cookie(CSRF_COOKIE, **flags)
    if found.set_csrf_cookie:
        response.set_cookie(CSRF_COOKIE, found.csrf, max_age=LANG_DAYS * 86400, **flags)
    return response
