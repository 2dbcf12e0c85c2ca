"""Technical logs hold the IP address and user agent of sign-in, upload and payment requests
(purged after 30 days: test_retention_purge); application logs carry no email address and no
client address."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kadrio_server.techlog import install_log_masking, mask_emails

from .billing_helpers import settings_for, signed_result
from .conftest import FIXTURES
from .server.conftest import Api, auth, make_api  # noqa: F401  (make_api: a fixture)


@pytest.fixture
def masked() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    install_log_masking()
    yield
    logging.setLogRecordFactory(before)


def test_email_addresses_are_masked() -> None:
    assert mask_emails("sent to ann.smith+x@mail.example.org.") == "sent to a***@***.org."
    assert mask_emails("Ivan.Petrov@yandex.ru, b@c.io") == "I***@***.ru, b***@***.io"
    assert mask_emails("no address @here or user@localhost") == "no address @here or user@localhost"


def test_log_records_are_masked_whatever_the_handler(
    masked: None, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("kadrio.test")
    with caplog.at_level(logging.INFO):
        log.info("user %s signed in", "ann@example.org")
        log.warning("refused: %r", {"email": "bob@example.com"})
        log.info("literal carol@example.net in the format")
        log.info("numbers stay numbers: %d of %.1f", 3, 2.5)
        try:
            raise ValueError("no user with the email dave@example.org")
        except ValueError:
            log.exception("lookup failed for %s", "dave@example.org")
    access = logging.getLogger("uvicorn.access")  # uvicorn may have stopped its propagation
    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d', "203.0.113.9:5123", "GET", "/x?e=eve@example.org", "1.1", 200
        )
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    (record,) = kept
    assert record.getMessage() == '- - "GET /x?e=e***@***.org HTTP/1.1" 200'
    text = "\n".join(caplog.messages) + "\n".join(r.exc_text or "" for r in caplog.records)
    assert "@example" not in text
    assert "user a***@***.org signed in" in caplog.messages
    assert "numbers stay numbers: 3 of 2.5" in caplog.messages
    assert "d***@***.org" in (caplog.records[4].exc_text or "")
    assert "203.0.113.9" not in record.getMessage()


def test_the_worker_process_logs_no_email(tmp_path: Path) -> None:
    """A real `kadrio` process: the commands install the masking before logging starts."""
    code = (
        "import logging\n"
        "from kadrio_server.commands import _logging\n"
        "_logging()\n"
        "logging.getLogger('kadrio.worker').warning('emailing %s', 'ann@example.org')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "emailing a***@***.org" in done.stderr and "ann@" not in done.stderr


def test_upload_and_payment_requests_are_logged_with_ip_and_agent(
    make_api: Callable[..., Api],  # noqa: F811
    tmp_path: Path,
) -> None:
    api = make_api(settings_for(tmp_path / "data", queue_url=f"sqlite:///{tmp_path / 'q.db'}"))
    user, token = api.user()
    agent = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    with (FIXTURES / "talk.mp4").open("rb") as fh:
        created = api.client.post(
            "/api/v1/jobs",
            data={"consent": "true"},
            files={"file": ("talk.mp4", fh, "video/mp4")},
            headers=auth(token) | agent,
        )
    assert created.status_code == 202, created.text
    bought = api.client.post(
        "/api/v1/billing/checkout", json={"plan": "starter"}, headers=auth(token) | agent
    )
    assert bought.status_code == 201
    number = bought.json()["invoice"]
    paid = api.client.post(
        "/billing/robokassa/result",
        data=signed_result(number, "990.00"),
        headers={"User-Agent": "Robokassa"},
    )
    assert paid.text == f"OK{number}"
    forged = api.client.post("/billing/robokassa/result", data=signed_result(number, "1.00"))
    assert forged.status_code == 400

    rows = api.service.db.all(
        "SELECT event, ip, user_agent, user_id, created_at FROM techlog ORDER BY created_at"
    )
    assert [(r["event"], r["user_agent"]) for r in rows] == [
        ("upload", agent["User-Agent"]),
        ("payment", agent["User-Agent"]),
        ("payment", "Robokassa"),
    ]
    assert {r["ip"] for r in rows} == {"testclient"}  # the client address the app saw
    assert {r["user_id"] for r in rows} == {user["id"]}
    assert all(r["created_at"] is not None for r in rows)
