"""Shared by the billing, retention and privacy tests: a service on SQLite or on a PostgreSQL
database of its own, users on a plan, jobs stored as if uploaded at a given time, the outbox,
and Robokassa notifications signed the way the documentation says."""

from __future__ import annotations

import email
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the service tests need the server extra")

from kadrio_core.media import probe
from kadrio_server import jobs
from kadrio_server.db import Row
from kadrio_server.schemas import JobOptions
from kadrio_server.service import Service, job_prefix
from kadrio_server.users import create_user

from .conftest import FIXTURES
from .server.conftest import fresh_database, make_settings

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ROBOKASSA = {
    "merchant_login": "kadrio-test",
    "password1": "p1-secret",
    "password2": "p2-secret",
    "algorithm": "md5",
}


@pytest.fixture
def own_pg() -> Iterator[str]:
    """A PostgreSQL database for one test (purges act on every row, so none is shared)."""
    yield from fresh_database("kadrio_billing")


def settings_for(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Any:
    providers = {"robokassa": ROBOKASSA} | overrides.pop("providers", {})
    if database_url:
        overrides["database_url"] = database_url
    return make_settings(data_dir, providers=providers, **overrides)


def new_service(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Service:
    service = Service(settings_for(data_dir, database_url, **overrides))
    service.db.open()
    service.db.upgrade()
    return service


def user_on(
    service: Service,
    plan: str = "free",
    plan_until: datetime | None = None,
    language: str = "en",
    email_address: str | None = None,
) -> Row:
    address = email_address or f"{uuid.uuid4().hex[:8]}@example.org"
    user = create_user(service.db, address, language=language)
    service.db.execute(
        "UPDATE users SET plan = ?, plan_until = ? WHERE id = ?", (plan, plan_until, user["id"])
    )
    return reload_user(service, user["id"])


def reload_user(service: Service, user_id: str) -> Row:
    row = service.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
    assert row is not None
    return row


def stored_job(service: Service, user: Row, uploaded_at: datetime) -> str:
    """A job stored through the upload path's own function, dated ``uploaded_at``."""
    source = FIXTURES / "talk-audio.m4a"
    job = jobs.create_job(service, user, source, source.name, probe(source), JobOptions())
    service.db.execute(
        "UPDATE jobs SET created_at = ?, updated_at = ?, status = 'done' WHERE id = ?",
        (uploaded_at, uploaded_at, job["id"]),
    )
    return job["id"]


def job_left(service: Service, user_id: str, job_id: str) -> bool:
    """Anything of the job left: its row or any stored object."""
    row = service.db.one("SELECT id FROM jobs WHERE id = ?", (job_id,))
    objects = list(service.storage.list(job_prefix(user_id, job_id)))
    assert (row is None) == (not objects), (row, objects)  # never half erased
    return row is not None


def outbox(service: Service) -> list[EmailMessage]:
    folder = service.settings.data_dir / "outbox"
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(folder.glob("*.eml"))
    ]


def mails_of_kind(service: Service, kind: str) -> list[EmailMessage]:
    return [m for m in outbox(service) if m["X-Kadrio-Mailing"] == kind]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def signed_result(
    number: int,
    amount: str,
    password2: str = ROBOKASSA["password2"],
    algorithm: str = "md5",
    **shp: str,
) -> dict[str, str]:
    """A ResultURL notification as Robokassa sends it: OutSum:InvId:Password2[:Shp_k=v...]."""
    parts = [amount, str(number), password2, *(f"Shp_{k}={shp[k]}" for k in sorted(shp))]
    signature = hashlib.new(algorithm, ":".join(parts).encode()).hexdigest().upper()
    params = {"OutSum": amount, "InvId": str(number), "SignatureValue": signature}
    params.update({f"Shp_{k}": v for k, v in shp.items()})
    return params


def count(service: Service, sql: str, params: tuple[Any, ...] = ()) -> int:
    row = service.db.one(sql, params)
    assert row is not None
    return int(next(iter(row.values())))
