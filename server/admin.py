"""Operator commands for retention, account deletion and policy changes: ``kadrio purge``,
``kadrio users delete`` and ``kadrio policy notify`` (kadrio_core.cli calls these)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from kadrio_core.errors import BadInput

from .commands import _logging, _service


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--at: not an ISO 8601 time: {text!r} (e.g. 2026-07-01T12:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def purge(at: str | None, dry_run: bool) -> None:
    from .retention import purge as run

    _logging()
    service = _service()
    try:
        service.db.upgrade()
        report = run(service, parse_time(at) if at else None, dry_run=dry_run)
    finally:
        service.close()
    for line in report.lines():
        click.echo(line)


def users_delete(email: str) -> None:
    from .accounts import close_account
    from .users import get_user

    service = _service()
    try:
        user = get_user(service.db, email)
        closed = close_account(service, user["id"])
    finally:
        service.close()
    if closed:
        click.echo(
            f"account {user['email']} closed: sign-in and tokens stopped; its data is erased by "
            "the next purge (within 30 days); a confirmation email was sent"
        )
    else:
        click.echo(f"account {user['email']} was closed already; erasure is pending")


def policy_notify(change: str, change_ru: str | None) -> None:
    from .privacy import notify_policy_change

    service = _service()
    try:
        recorded, sent = notify_policy_change(service, change, change_ru)
    finally:
        service.close()
    click.echo(f"policy change recorded for {recorded} user(s); {sent} email(s) sent now")
