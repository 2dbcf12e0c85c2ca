"""Security headers on every response: a Content-Security-Policy with no inline scripts and no
third-party origins (clips on S3 excepted: the operator's own bucket), no framing, no sniffing.

A response that already carries a Content-Security-Policy keeps it: a page that must allow
more (e.g. analytics after consent) builds its own with ``content_security_policy(extra)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kadrio_core.settings import Settings


def media_origins(settings: Settings) -> list[str]:
    """Where clips and previews are fetched from besides this site: the S3 endpoint, if any."""
    if settings.service.web.media_origins:
        return list(settings.service.web.media_origins)
    if settings.storage != "s3":
        return []
    options = settings.provider_options("s3")
    endpoint = options.get("endpoint_url")
    if not endpoint:
        return ["https://*.amazonaws.com"]
    parts = urlsplit(str(endpoint))
    origins = [f"{parts.scheme}://{parts.netloc}"]
    if options.get("bucket") and options.get("addressing_style") == "virtual":
        origins.append(f"{parts.scheme}://{options['bucket']}.{parts.netloc}")
    return origins


def content_security_policy(
    settings: Settings, extra: dict[str, Iterable[str]] | None = None
) -> str:
    media = " ".join(["'self'", *media_origins(settings)])
    directives: dict[str, list[str]] = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": [media],
        "media-src": [media],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    for name, values in (extra or {}).items():
        directives.setdefault(name, ["'self'"]).extend(values)
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(settings: Settings, https: bool) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(settings),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    }
    if https:
        headers["strict-transport-security"] = "max-age=31536000"
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """Pure ASGI (uploads stream through untouched); adds the headers a response lacks."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        public_https = settings.service.public_url.startswith("https://")
        self._plain = security_headers(settings, https=public_https)
        self._https = security_headers(settings, https=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._https if scope.get("scheme") == "https" else self._plain

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
