"""Email through Resend (the ``resend`` SDK), with an idempotency key per message.

Key: ``providers.resend.api_key`` or ``RESEND_API_KEY``; API URL: ``providers.resend.api_url`` or
``RESEND_API_URL``. The idempotency key is a digest of the message (or its ``Idempotency-Key``
header), so sending the same message again, after a retry or a worker restart, sends one email.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Message
from kadrio_core.providers import Notifier, ProviderOptions
from kadrio_core.remote import (
    ApiKeyed,
    RemoteOptions,
    Verdict,
    first_line,
    status_verdict,
    with_retries,
)

KEY_ENV = "RESEND_API_KEY"
URL_ENV = "RESEND_API_URL"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# the SDK keeps its key, URL and HTTP client in module globals: one send at a time per process
_sdk_lock = threading.Lock()


class ResendOptions(RemoteOptions):
    api_key: str | None = Field(default=None, description=f"default: ${KEY_ENV}")
    api_url: str | None = Field(default=None, description=f"default: ${URL_ENV} or Resend's")
    sender: str = "Kadrio <no-reply@kadrio.localhost>"
    timeout: float = Field(default=30.0, gt=0)


def classify(exc: Exception) -> Verdict | None:
    import resend

    if isinstance(exc, resend.exceptions.ResendError):
        try:
            status = int(exc.code)
        except (TypeError, ValueError):
            status = 500
        detail = f"{exc.error_type}: {first_line(exc.message)}"
        if exc.error_type in ("daily_quota_exceeded", "monthly_quota_exceeded"):
            return Verdict("unavailable", f"quota exhausted ({detail})")
        if exc.error_type in ("missing_api_key", "invalid_api_key"):
            return Verdict("fatal", f"invalid API key ({detail})")
        return status_verdict(status, detail, exc.headers.get("retry-after"))
    return None


def idempotency_key(message: Message) -> str:
    given = message.headers.get(IDEMPOTENCY_HEADER)
    if given:
        return given
    return "kadrio-" + hashlib.sha256(message.model_dump_json().encode()).hexdigest()[:40]


class ResendNotifier(ApiKeyed, Notifier):
    key_env = KEY_ENV
    name = "resend"
    description = "email through the Resend API"
    Options: ClassVar[type[ProviderOptions]] = ResendOptions
    options: ResendOptions

    def params(self, message: Message) -> dict[str, Any]:
        params: dict[str, Any] = {
            "from": message.sender or self.options.sender,
            "to": [message.to],
            "subject": message.subject,
            "text": message.text,
        }
        if message.html:
            params["html"] = message.html
        headers = {k: v for k, v in message.headers.items() if k != IDEMPOTENCY_HEADER}
        if headers:
            params["headers"] = headers
        return params

    def send(self, message: Message) -> str:
        import resend
        from resend.http_client_requests import RequestsClient

        key = self._key()
        o = self.options
        url = o.api_url or os.environ.get(URL_ENV) or "https://api.resend.com"
        options = {"idempotency_key": idempotency_key(message)}
        params = self.params(message)

        def call() -> Any:
            with _sdk_lock:
                resend.api_key, resend.api_url = key, url.rstrip("/")
                resend.default_http_client = RequestsClient(timeout=o.timeout)  # type: ignore[arg-type]
                return resend.Emails.send(params, options)  # type: ignore[arg-type]

        reply = with_retries(call, classify, o, "resend")
        return str(reply["id"])


@hookimpl
def register_notifiers(register):  # type: ignore[no-untyped-def]
    register(ResendNotifier)
