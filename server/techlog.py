"""Technical logs: IP address and user agent of security-relevant requests (sign-in, upload,
payment), kept 30 days; and the masking that keeps other personal data out of application logs.

Application logs (``logging``) get every email address masked (``a***@***.org``) when each record
is created, whatever handler or formatter prints it later, exception tracebacks included; the
client address of uvicorn's access log is dropped. The IP addresses the service needs for
security live only in the ``techlog`` table, which the periodic task purges.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from starlette.requests import Request

from .db import Database, utcnow
from .service import new_id

Event = Literal["sign_in", "sign_in_failed", "upload", "payment", "account_deletion"]
EVENTS: tuple[str, ...] = ("sign_in", "sign_in_failed", "upload", "payment", "account_deletion")
USER_AGENT_MAX = 300

_EMAIL = re.compile(
    r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
    r"\.([A-Za-z]{2,24})\b"
)


def record(
    db: Database,
    event: Event,
    ip: str | None,
    user_agent: str | None,
    user_id: str | None = None,
    now: datetime | None = None,
) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown technical log event {event!r}")
    db.execute(
        "INSERT INTO techlog (id, user_id, event, ip, user_agent, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            new_id(),
            user_id,
            event,
            ip,
            (user_agent or "")[:USER_AGENT_MAX] or None,
            now or utcnow(),
        ),
    )


def record_request(
    db: Database, event: Event, request: Request, user_id: str | None = None
) -> None:
    """Record ``event`` with the request's client address and User-Agent."""
    ip = request.client.host if request.client else None
    record(db, event, ip, request.headers.get("user-agent"), user_id)


def purge(db: Database, now: datetime, days: int, dry_run: bool = False) -> int:
    """Delete entries older than ``days``; return how many (would have) gone."""
    cutoff = now - timedelta(days=days)
    if dry_run:
        row = db.one("SELECT COUNT(*) AS n FROM techlog WHERE created_at <= ?", (cutoff,))
        return int(row["n"]) if row else 0
    return db.execute("DELETE FROM techlog WHERE created_at <= ?", (cutoff,))


# -- application logs -------------------------------------------------------------------------


def mask_emails(text: str) -> str:
    return _EMAIL.sub(lambda m: f"{m[1]}***@***.{m[2]}", text)


def _mask_arg(value: Any) -> Any:
    if isinstance(value, str):
        return mask_emails(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    masked = mask_emails(text)
    return masked if masked != text else value


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask email addresses in a record's message, arguments and traceback, in place."""
    if isinstance(record.msg, str):
        record.msg = mask_emails(record.msg)
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and args:
        args = ("-", *args[1:])  # the client address: personal data, kept only in techlog
    if isinstance(args, tuple):
        record.args = tuple(_mask_arg(a) for a in args)
    elif isinstance(args, Mapping):
        record.args = {k: _mask_arg(v) for k, v in args.items()}
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = mask_emails(text)
    return record


def install_log_masking() -> None:
    """Mask every log record of this process at creation (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "kadrio_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(current(*args, **kwargs))

    factory.kadrio_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
