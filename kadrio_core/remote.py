"""Helpers for providers that call a remote service: retries with backoff, error verdicts, keys.

A provider wraps each remote call in :func:`with_retries` with a classifier that turns the SDK's
exception into a :class:`Verdict`:

- ``retry``: worth trying again (network error, timeout, 429, 5xx, overloaded, malformed reply);
  after the last retry it becomes :class:`~kadrio_core.errors.ProviderUnavailable`, so the next
  provider of a fallback chain runs;
- ``unavailable``: out of reach and retrying will not help (quota or billing exhausted);
- ``fatal``: a clear error at once, no retry and no fallback (an invalid key, a rejected request).

SDK-internal retries are switched off by the providers, so this policy alone decides how many
requests are made and how long a run waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from .errors import ProviderError, ProviderUnavailable
from .providers import ProviderOptions

T = TypeVar("T")
Kind = Literal["retry", "unavailable", "fatal"]


class RemoteOptions(ProviderOptions):
    """Options every remote provider has: timeouts and the retry policy."""

    timeout: float = Field(default=60.0, gt=0, description="seconds per HTTP request")
    retries: int = Field(default=3, ge=0, le=10, description="retries after the first attempt")
    backoff: float = Field(default=1.0, ge=0, description="first wait in seconds, then doubled")
    max_backoff: float = Field(default=30.0, ge=0, description="longest wait between attempts")


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    message: str
    retry_after: float | None = None


def status_verdict(status: int, detail: str = "", retry_after: str | None = None) -> Verdict:
    """The verdict for an HTTP error status of a provider's API."""
    what = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return Verdict("fatal", f"invalid or unauthorised API key ({what})")
    if status == 402:
        return Verdict("unavailable", f"quota or billing exhausted ({what})")
    if status in (408, 409, 425, 429) or status >= 500:
        return Verdict("retry", what, parse_retry_after(retry_after))
    return Verdict("fatal", f"request rejected ({what})")


def first_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of an error text, cut to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def with_retries(
    call: Callable[[], T],
    classify: Callable[[Exception], Verdict | None],
    options: RemoteOptions,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; retry with exponential backoff while ``classify`` says so.

    An exception the classifier returns None for is not a provider failure and propagates.
    """
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            if verdict.kind == "fatal":
                raise ProviderError(f"{what}: {verdict.message}") from None
            if verdict.kind == "unavailable" or attempt >= options.retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise ProviderUnavailable(f"{what}: {verdict.message}{tries}") from None
            wait = options.backoff * 2**attempt
            if verdict.retry_after is not None:
                wait = max(wait, verdict.retry_after)
            sleep(min(wait, options.max_backoff))
            attempt += 1


def secret(value: str | None, env: str) -> str | None:
    """A credential from a provider option, else from the environment variable ``env``."""
    return value or os.environ.get(env) or None


def require_secret(value: str | None, env: str, provider: str) -> str:
    """The secret from the option or ``env``; BadInput naming the variable when there is none."""
    key = secret(value, env)
    if not key:
        from .errors import BadInput

        raise BadInput(f"{provider} needs an API key: set {env}")
    return key


def configured_secret(
    provider: str, option: str, env: str | None = None, optional: bool = False
) -> str | None:
    """'set' or 'missing' (never the value): the option in settings, or ``env``.

    An ``optional`` credential that is not configured gives None (the provider needs none).
    """
    if env and os.environ.get(env):
        return "set"
    try:
        from .settings import load_settings

        value = load_settings().provider_options(provider).get(option)
    except Exception:
        value = None
    if value:
        return "set"
    return None if optional else "missing"


class ApiKeyed:
    """Mixin for a provider whose ``Options`` has ``api_key``, with ``key_env`` as fallback.

    Gives it the credentials status for `kadrio plugins`, the early ``check()`` and ``_key()``.
    """

    name: ClassVar[str]
    key_env: ClassVar[str]
    options: Any

    @classmethod
    def credentials_status(cls) -> str | None:
        return configured_secret(cls.name, "api_key", cls.key_env)

    def check(self) -> None:
        self._key()

    def _key(self) -> str:
        return require_secret(self.options.api_key, self.key_env, self.name)
