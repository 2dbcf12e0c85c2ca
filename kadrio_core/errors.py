"""Exceptions with a meaning the CLI and the service map to exit codes and statuses."""


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
