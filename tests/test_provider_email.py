"""The SMTP notifier against aiosmtpd on loopback; the Resend notifier against a fake API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kadrio_core.errors import BadInput, ProviderError, ProviderUnavailable
from kadrio_core.models import Message
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

from .fakes.fixtures import SMTPServer
from .fakes.providers import FakeResend
from .fakes.seaweedfs import free_ports
from .fakes.server import Reply

FAST = {"backoff": 0.01, "max_backoff": 0.05, "retries": 2, "timeout": 3}
MESSAGE = Message(
    to="ann@example.org",
    subject="Ваши клипы готовы",
    text="3 клипа: https://kadrio.example/jobs/1",
    html="<p>3 клипа</p>",
)


def notifier(name: str, **options: Any):  # type: ignore[no-untyped-def]
    return registry("notifier").create(name, Settings(providers={name: {**FAST, **options}}))


def smtp_options(server: SMTPServer, security: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "security": security,
        "ca_file": str(server.ca_file),
        "sender": "Kadrio <robot@kadrio.example>",
        **extra,
    }


# -- SMTP -------------------------------------------------------------------------------------


def test_starttls_with_login(smtp_server: Callable[..., SMTPServer]) -> None:
    server = smtp_server("starttls", login=("robot", "s3cret"))
    smtp = notifier("smtp", **smtp_options(server, "starttls", username="robot", password="s3cret"))
    message_id = smtp.send(MESSAGE)
    (envelope, email), *_ = server.messages
    assert server.logins == [("robot", "s3cret")]
    assert envelope.rcpt_tos == ["ann@example.org"]
    assert envelope.mail_from == "robot@kadrio.example"
    assert email["Message-ID"] == message_id
    assert email["Subject"] == "Ваши клипы готовы"
    assert email.get_body(("plain",)).get_content().strip() == MESSAGE.text
    assert email.get_body(("html",)).get_content().strip() == "<p>3 клипа</p>"


def test_implicit_tls(smtp_server: Callable[..., SMTPServer]) -> None:
    server = smtp_server("ssl")
    notifier("smtp", **smtp_options(server, "ssl")).send(MESSAGE)
    assert len(server.messages) == 1


def test_plain_relay(smtp_server: Callable[..., SMTPServer]) -> None:
    server = smtp_server("none")
    notifier("smtp", **smtp_options(server, "none")).send(MESSAGE)
    assert server.messages[0][1]["To"] == "ann@example.org"


def test_a_wrong_password_is_an_immediate_error(smtp_server: Callable[..., SMTPServer]) -> None:
    server = smtp_server("starttls", login=("robot", "s3cret"))
    options = smtp_options(server, "starttls", username="robot", password="guess")
    with pytest.raises(ProviderError, match="login refused") as caught:
        notifier("smtp", **options).send(MESSAGE)
    assert not isinstance(caught.value, ProviderUnavailable)
    # one connection, no retry loop (smtplib tries each AUTH mechanism once: PLAIN, LOGIN)
    assert set(server.logins) == {("robot", "guess")} and len(server.logins) <= 2
    assert not server.messages


def test_an_untrusted_certificate_is_refused(smtp_server: Callable[..., SMTPServer]) -> None:
    server = smtp_server("starttls")
    options = smtp_options(server, "starttls")
    del options["ca_file"]  # the system CAs do not know the test CA
    with pytest.raises(ProviderError, match="certificate"):
        notifier("smtp", **options).send(MESSAGE)
    assert not server.messages


def test_starttls_is_not_skipped_when_the_server_lacks_it(
    smtp_server: Callable[..., SMTPServer],
) -> None:
    server = smtp_server("none")  # offers no STARTTLS
    with pytest.raises(ProviderError, match="STARTTLS"):
        notifier("smtp", **smtp_options(server, "starttls")).send(MESSAGE)
    assert not server.messages


def test_a_server_that_is_down_is_unavailable_after_retries() -> None:
    options = {"host": "127.0.0.1", "port": free_ports(1)[0], "security": "none"}
    with pytest.raises(ProviderUnavailable, match="after 3 attempts"):
        notifier("smtp", **options).send(MESSAGE)


# -- Resend -----------------------------------------------------------------------------------


@pytest.fixture
def resend_api(fake_resend: FakeResend, monkeypatch: pytest.MonkeyPatch) -> FakeResend:
    for name, value in fake_resend.env.items():
        monkeypatch.setenv(name, value)
    return fake_resend


def test_resend_sends_with_an_idempotency_key(resend_api: FakeResend) -> None:
    resend = notifier("resend", sender="Kadrio <robot@kadrio.example>")
    email_id = resend.send(MESSAGE)
    (call,) = resend_api.server.calls("POST", "/emails")
    assert call.headers["authorization"] == f"Bearer {resend_api.key}"
    key = call.headers["idempotency-key"]
    assert key.startswith("kadrio-") and len(key) > 20
    assert call.json() == {
        "from": "Kadrio <robot@kadrio.example>",
        "to": ["ann@example.org"],
        "subject": "Ваши клипы готовы",
        "text": MESSAGE.text,
        "html": "<p>3 клипа</p>",
    }
    # the same message again (a retry, a restarted worker) has the same key: one email
    assert resend.send(MESSAGE) == email_id
    other = resend.send(MESSAGE.model_copy(update={"to": "bob@example.org"}))
    assert other != email_id
    keys = [c.headers["idempotency-key"] for c in resend_api.server.calls("POST", "/emails")]
    assert keys[0] == keys[1] != keys[2]


def test_resend_key_from_the_message(resend_api: FakeResend) -> None:
    message = MESSAGE.model_copy(update={"headers": {"Idempotency-Key": "job-7-done"}})
    notifier("resend").send(message)
    (call,) = resend_api.server.requests
    assert call.headers["idempotency-key"] == "job-7-done"
    assert "headers" not in call.json()  # not sent on as an email header


def test_resend_retries_a_rate_limit(resend_api: FakeResend) -> None:
    limited = {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"}
    resend_api.server.script("POST", "/emails", Reply(429, limited), Reply(503, {}))
    notifier("resend").send(MESSAGE)
    calls = resend_api.server.calls("POST", "/emails")
    assert len(calls) == 3
    assert len({c.headers["idempotency-key"] for c in calls}) == 1


@pytest.mark.parametrize(
    "reply, why",
    [
        (Reply(500, {"statusCode": 500, "name": "application_error", "message": "x"}), "500"),
        (Reply(200, delay=1.0), "timed out|Read timed out|HttpClientError"),
        (Reply.malformed(), "decode JSON"),
    ],
    ids=["500", "timeout", "malformed-json"],
)
def test_resend_outage_is_unavailable(resend_api: FakeResend, reply: Reply, why: str) -> None:
    resend_api.server.script("POST", "/emails", reply, reply, reply)
    with pytest.raises(ProviderUnavailable, match=why):
        notifier("resend", timeout=0.3).send(MESSAGE)
    assert len(resend_api.server.calls("POST", "/emails")) == 3


def test_resend_quota_is_unavailable_at_once(resend_api: FakeResend) -> None:
    quota = {"statusCode": 429, "name": "daily_quota_exceeded", "message": "quota"}
    resend_api.server.script("POST", "/emails", Reply(429, quota))
    with pytest.raises(ProviderUnavailable, match="quota"):
        notifier("resend").send(MESSAGE)
    assert len(resend_api.server.requests) == 1


def test_resend_invalid_key(resend_api: FakeResend) -> None:
    with pytest.raises(ProviderError, match="invalid API key") as caught:
        notifier("resend", api_key="re_wrong").send(MESSAGE)
    assert not isinstance(caught.value, ProviderUnavailable)
    assert len(resend_api.server.requests) == 1


def test_resend_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    with pytest.raises(BadInput, match="RESEND_API_KEY"):
        notifier("resend").send(MESSAGE)
