"""Consents and policy changes.

The documents live in ``server/policies/`` (rendered by :mod:`kadrio_server.web.policies`); the
version of a consent is its document's ``updated`` date, and each consent given is recorded in
``consents`` with that version and the time. Signing up (the first sign-in through the web)
records the personal-data consent (152-FZ); each upload records the biometric one
(:mod:`kadrio_server.jobs`). A material change of the privacy policy (new third parties, new
purposes) is announced to every user by email: ``kadrio policy notify --change "..."``.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from typing import Literal

from . import mailings
from .db import Cursorish, Database, utcnow
from .service import Service, new_id

ConsentKind = Literal["personal_data", "biometric"]
DOCUMENTS: dict[str, str] = {"personal_data": "personal-data", "biometric": "biometric"}
POLICY = "privacy"


@functools.cache
def document_updated(name: str) -> str:
    """The ``updated`` date (YYYY-MM-DD) of a policy document (same in every language)."""
    from .web.policies import source

    text = source(name, "ru")
    head = text[4:].partition("\n---\n")[0] if text.startswith("---\n") else ""
    for line in head.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "updated":
            return value.strip()
    raise ValueError(f"policy {name} has no 'updated' date")


def consent_version(kind: ConsentKind) -> str:
    return document_updated(DOCUMENTS[kind])


def record_consent(
    tx: Cursorish, user_id: str, kind: ConsentKind, now: datetime, job_id: str | None = None
) -> str:
    """Record that ``user_id`` accepted the current text of ``kind``; returns the version."""
    version = consent_version(kind)
    tx.execute(
        "INSERT INTO consents (id, user_id, job_id, kind, version, given_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (new_id(), user_id, job_id, kind, version, now),
    )
    return version


def accept_personal_data(db: Database, user_id: str, now: datetime | None = None) -> bool:
    """Record the personal-data consent given at sign-in unless this version is recorded
    already; True when a row was written."""
    version = consent_version("personal_data")
    with db.transaction() as tx:
        if tx.one(
            "SELECT id FROM consents WHERE user_id = ? AND kind = 'personal_data' AND version = ?",
            (user_id, version),
        ):
            return False
        record_consent(tx, user_id, "personal_data", now or utcnow())
    return True


def needs_personal_data_consent(db: Database, user_id: str) -> bool:
    """No acceptance of the current personal-data consent is on record."""
    row = db.one(
        "SELECT id FROM consents WHERE user_id = ? AND kind = 'personal_data' AND version = ?",
        (user_id, consent_version("personal_data")),
    )
    return row is None


def notify_policy_change(
    service: Service, change: str, change_ru: str | None = None, now: datetime | None = None
) -> tuple[int, int]:
    """Email every active user about a material change; (recorded now, sent now).

    Running it again with the same text records nothing new (one email per user per change)
    and sends what is still unsent.
    """
    change = change.strip()
    if not change:
        from kadrio_core.errors import BadInput

        raise BadInput("describe the change: --change TEXT")
    now = now or utcnow()
    updated = document_updated(POLICY)
    ref = hashlib.sha256(f"{updated}\n{change}".encode()).hexdigest()[:24]
    users = service.db.all(
        "SELECT id, language FROM users WHERE deactivated_at IS NULL ORDER BY created_at"
    )
    recorded = 0
    for user in users:
        text = change_ru.strip() if user["language"] == "ru" and change_ru else change
        params = {"change": text, "updated": updated, "path": "/privacy"}
        with service.db.transaction() as tx:
            recorded += mailings.enqueue(tx, user["id"], "policy_changed", ref, params, now)
    return recorded, mailings.deliver(service)
