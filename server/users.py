"""User accounts: email, plan, language and the key that signs their webhooks."""

from __future__ import annotations

import re
import secrets

from kadrio_core.errors import BadInput

from .db import Database, Row, utcnow
from .schemas import LANGUAGES, PLANS, UserOut
from .service import new_id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise BadInput(f"not an email address: {email!r}")
    return email


def create_user(db: Database, email: str, plan: str = "free", language: str = "en") -> Row:
    email = normalise_email(email)
    if plan not in PLANS:
        raise BadInput(f"unknown plan {plan!r}; plans: {', '.join(PLANS)}")
    if language not in LANGUAGES:
        raise BadInput(f"unknown language {language!r}; languages: {', '.join(LANGUAGES)}")
    with db.transaction() as tx:
        if tx.one("SELECT id FROM users WHERE email = ?", (email,)):
            raise BadInput(f"a user with the email {email} already exists")
        user_id = new_id()
        tx.execute(
            "INSERT INTO users (id, email, plan, language, webhook_secret, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, email, plan, language, "whsec_" + secrets.token_urlsafe(24), utcnow()),
        )
    user = find_user(db, email)
    assert user is not None
    return user


def find_user(db: Database, email: str) -> Row | None:
    return db.one("SELECT * FROM users WHERE email = ?", (normalise_email(email),))


def get_user(db: Database, email: str) -> Row:
    user = find_user(db, email)
    if user is None:
        raise BadInput(f"no user with the email {email}")
    return user


def user_out(user: Row) -> UserOut:
    return UserOut(
        id=user["id"],
        email=user["email"],
        plan=user["plan"],
        language=user["language"],
        webhook_secret=user["webhook_secret"],
    )
