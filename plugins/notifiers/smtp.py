"""Email over SMTP (smtplib): STARTTLS (port 587), implicit TLS (465) or plain (local relays).

Settings ``providers.smtp``: ``host``, ``port``, ``security`` (``starttls`` | ``ssl`` | ``none``),
``username`` and ``password`` (optional), ``sender``, ``ca_file`` for a private CA. Temporary
failures (connection refused, timeouts, 4xx replies) are retried with backoff; a refused login or
a refused address is a clear error at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Message
from kadrio_core.providers import Notifier, ProviderOptions
from kadrio_core.remote import RemoteOptions, Verdict, configured_secret, first_line, with_retries

from .outbox import to_email

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class SMTPOptions(RemoteOptions):
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535, description="default: by security")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "Kadrio <no-reply@kadrio.localhost>"
    ca_file: Path | None = Field(default=None, description="trust this CA (default: system CAs)")
    timeout: float = Field(default=30.0, gt=0)


def classify(exc: Exception) -> Verdict | None:
    import smtplib
    import ssl

    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Verdict("fatal", f"login refused ({exc.smtp_code} {first_line(exc.smtp_error)})")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return Verdict("fatal", f"recipient refused: {', '.join(exc.recipients)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Verdict("fatal", f"server does not support it: {first_line(exc)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Verdict("fatal", f"TLS certificate not trusted ({exc.verify_message})")
    if isinstance(exc, smtplib.SMTPResponseException):
        what = f"{exc.smtp_code} {first_line(exc.smtp_error)}"
        return Verdict("retry" if 400 <= exc.smtp_code < 500 else "fatal", what)
    if isinstance(exc, (smtplib.SMTPException, OSError)):  # disconnects, refused, timeouts
        return Verdict("retry", f"{type(exc).__name__}: {first_line(exc)}")
    return None


class SMTPNotifier(Notifier):
    name = "smtp"
    description = "email through an SMTP server (STARTTLS or SSL)"
    Options: ClassVar[type[ProviderOptions]] = SMTPOptions
    options: SMTPOptions

    @classmethod
    def credentials_status(cls) -> str | None:
        return configured_secret(cls.name, "password", optional=True)

    def _tls(self) -> Any:
        import ssl

        cafile = str(self.options.ca_file) if self.options.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def _send_once(self, email: Any) -> None:
        import smtplib

        o = self.options
        port = o.port or DEFAULT_PORTS[o.security]
        if o.security == "ssl":
            smtp = smtplib.SMTP_SSL(o.host, port, timeout=o.timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(o.host, port, timeout=o.timeout)
        with smtp:
            smtp.ehlo()
            if o.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if o.username:
                smtp.login(o.username, o.password or "")
            smtp.send_message(email)

    def send(self, message: Message) -> str:
        email = to_email(message, self.options.sender)
        o = self.options
        port = o.port or DEFAULT_PORTS[o.security]
        with_retries(lambda: self._send_once(email), classify, o, f"smtp {o.host}:{port}")
        return str(email["Message-ID"])


@hookimpl
def register_notifiers(register):  # type: ignore[no-untyped-def]
    register(SMTPNotifier)
