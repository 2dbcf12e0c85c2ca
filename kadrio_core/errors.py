"""Exceptions with a meaning the CLI and the service map to exit codes and statuses."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class KadrioError(Exception):
    """Base of Kadrio's own errors."""


class BadInput(KadrioError):
    """The user's input or configuration cannot be used (CLI exit code 2, HTTP 4xx)."""


class PluginError(BadInput):
    """A provider name is unknown or registered twice, or its options are invalid."""


class ProviderError(KadrioError):
    """A provider failed for good: a clear error, not worth trying another provider."""


class ProviderUnavailable(ProviderError):
    """A provider is out of reach after its retries (network, 5xx, quota).

    The next provider of a fallback chain is tried.
    """


def first_problem(exc: ValidationError, where: str = "") -> str:
    """The first error of a pydantic validation as one line: ``field.path: message``."""
    error = exc.errors()[0]
    path = ".".join(str(part) for part in error["loc"]) or where
    return f"{path}: {error['msg']}" if path else error["msg"]
