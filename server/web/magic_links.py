"""Sign-in by magic link, as design.md says: a token of 32 random bytes, only its SHA-256
stored, 15 minutes, single use, rate limited per address and per IP. Asking for a link answers
the same whether or not the address has an account; the account (Free plan) is made when the
link is first used. The link opens a confirm page, and only its POST signs in: mail scanners
that prefetch links do not use them up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from kadrio_core.errors import BadInput
from kadrio_core.models import Message
from kadrio_core.plugins import registry
from kadrio_core.providers import Notifier

from ..auth import hash_token
from ..db import Database, Row, utcnow
from ..service import new_id
from ..users import create_user, find_user, normalise_email
from .i18n import Translator
from .site import Site

LIFETIME = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)
TOKEN_BYTES = 32
DEFAULT_NEXT = "/dashboard"


class RateLimited(Exception):
    """Too many sign-in requests for this address or from this IP in the last hour."""


@dataclass(frozen=True)
class Limits:
    per_address: int
    per_ip: int


def check_rate(
    site: Site, email: str, ip: str, limits: Limits, now: datetime | None = None
) -> None:
    """Count this request against both limits, or raise RateLimited (and count nothing)."""
    now = now or utcnow()
    since = now - RATE_WINDOW
    keys = {
        "address": (site.digest("sign-in-address", email), limits.per_address),
        "ip": (site.digest("sign-in-ip", ip), limits.per_ip),
    }
    with site.service.db.transaction() as tx:
        tx.execute("DELETE FROM sign_in_attempts WHERE created_at < ?", (since,))
        for scope, (key, limit) in keys.items():
            row = tx.one(
                "SELECT COUNT(*) AS n FROM sign_in_attempts "
                "WHERE scope = ? AND key_hash = ? AND created_at >= ?",
                (scope, key, since),
            )
            if row is not None and int(row["n"]) >= limit:
                raise RateLimited(scope)
        for scope, (key, _) in keys.items():
            tx.execute(
                "INSERT INTO sign_in_attempts (id, scope, key_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (new_id(), scope, key, now),
            )


def issue_link(db: Database, email: str, language: str, now: datetime | None = None) -> str:
    """A new single-use token for ``email`` (normalised by the caller); returned once."""
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with db.transaction() as tx:
        tx.execute("DELETE FROM sign_in_links WHERE expires_at < ?", (now,))
        tx.execute(
            "INSERT INTO sign_in_links (token_hash, email, language, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (hash_token(token), email, language, now, now + LIFETIME),
        )
    return token


def _plausible(token: str) -> bool:
    return 20 <= len(token) <= 100 and token.replace("-", "").replace("_", "").isalnum()


def peek_link(db: Database, token: str, now: datetime | None = None) -> Row | None:
    """The link's row while it is usable (for the confirm page; nothing is changed)."""
    if not _plausible(token):
        return None
    return db.one(
        "SELECT email, language, expires_at FROM sign_in_links "
        "WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (hash_token(token), now or utcnow()),
    )


def redeem_link(db: Database, token: str, now: datetime | None = None) -> Row | None:
    """Use the link up: its row if it was unused and unexpired (one caller only), else None."""
    if not _plausible(token):
        return None
    now = now or utcnow()
    with db.transaction() as tx:
        used = tx.execute(
            "UPDATE sign_in_links SET used_at = ? "
            "WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (now, hash_token(token), now),
        )
        if not used:
            return None
        return tx.one(
            "SELECT email, language FROM sign_in_links WHERE token_hash = ?", (hash_token(token),)
        )


def account_for(db: Database, email: str, language: str) -> Row:
    """The address's account; a new one on the Free plan at its first sign-in."""
    user = find_user(db, email)
    if user is not None:
        return user
    try:
        return create_user(db, email, plan="free", language=language)
    except BadInput:  # two first sign-ins at once: the other one made it
        user = find_user(db, email)
        if user is None:
            raise
        return user


def link_url(site: Site, token: str, next_path: str = DEFAULT_NEXT) -> str:
    query = {"token": token} | ({"next": next_path} if next_path != DEFAULT_NEXT else {})
    return site.public_url("/signin/confirm?" + urlencode(query))


def sign_in_message(t: Translator, email: str, link: str) -> Message:
    minutes = int(LIFETIME.total_seconds() // 60)
    return Message(
        to=email,
        subject=t("email.signin.subject"),
        text=t("email.signin.text", link=link, minutes=minutes),
        headers={"Auto-Submitted": "auto-generated"},
    )


def send_link(site: Site, email: str, language: str, next_path: str = DEFAULT_NEXT) -> None:
    """Issue a link for ``email`` and send it through the notifier plugin, in the account's
    language (a new address: ``language``, the page's)."""
    db = site.service.db
    email = normalise_email(email)
    known = find_user(db, email)
    if known is not None:
        language = known["language"]
    token = issue_link(db, email, language)
    t = Translator(language, site.settings.service.web.timezone)
    message = sign_in_message(t, email, link_url(site, token, next_path))
    try:
        notifier = registry("notifier").create(site.settings.notifier, site.settings)
        assert isinstance(notifier, Notifier)
        notifier.send(message)
    except Exception:
        db.execute("DELETE FROM sign_in_links WHERE token_hash = ?", (hash_token(token),))
        raise
