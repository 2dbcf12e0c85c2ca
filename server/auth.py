"""API tokens: ``Authorization: Bearer kad_...``. Only a SHA-256 of each token is stored.

A token carries 256 random bits, so a plain (fast) hash is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from kadrio_core.errors import BadInput

from .db import Database, Row, utcnow
from .errors import ApiError
from .service import Service, new_id
from .users import get_user

TOKEN_PREFIX = "kad_"
_TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is a hint; don't write on every request


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, email: str) -> tuple[str, Row]:
    """A new token for the user; the token itself is returned once and never stored."""
    user = get_user(db, email)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    db.execute(
        "INSERT INTO api_tokens (id, user_id, token_hash, prefix, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (token_id, user["id"], hash_token(token), token[:10], utcnow()),
    )
    row = db.one("SELECT * FROM api_tokens WHERE id = ?", (token_id,))
    assert row is not None
    return token, row


def revoke_token(db: Database, token_or_id: str) -> Row:
    """Revoke by the token itself or by its id; revoking twice is not an error."""
    value = token_or_id.strip()
    if value.startswith(TOKEN_PREFIX):
        row = db.one("SELECT * FROM api_tokens WHERE token_hash = ?", (hash_token(value),))
    else:
        row = db.one("SELECT * FROM api_tokens WHERE id = ?", (value,))
    if row is None:
        raise BadInput("no such token")
    db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (utcnow(), row["id"]),
    )
    return row


def user_for_token(db: Database, token: str) -> Row | None:
    row = db.one(
        "SELECT u.*, t.id AS token_id, t.last_used_at AS token_last_used_at "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.deactivated_at IS NULL",
        (hash_token(token),),
    )
    if row is None:
        return None
    now = utcnow()
    last = row.pop("token_last_used_at")
    if last is None or now - last > _TOUCH_EVERY:
        db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, row["token_id"]))
    return row


async def require_user(request: Request) -> Row:
    """The user of the request's bearer token, or a 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    service: Service = request.app.state.service
    user = await run_in_threadpool(user_for_token, service.db, token)
    if user is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    return user
