"""What every page needs, built once per app: the secret key, the templates, cookie signers."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request

from kadrio_core.settings import Settings

from ..service import Service


def secret_key(settings: Settings) -> bytes:
    """The configured key, else one generated once and kept in ``<data dir>/secret_key``.

    Every process of one installation shares the data dir, so they agree on the key; machines
    that do not share it must set ``KADRIO_SERVICE__WEB__SECRET_KEY``.
    """
    configured = settings.service.web.secret_key
    if configured:
        return configured.encode()
    path: Path = settings.data_dir / "secret_key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@dataclass
class Site:
    service: Service
    secret: bytes
    templates: Environment

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def digest(self, purpose: str, value: str) -> str:
        """An HMAC of ``value`` for one purpose: stored instead of addresses and IPs."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def public_url(self, path: str) -> str:
        return self.settings.service.public_url.rstrip("/") + path

    def secure_cookies(self, request: Request) -> bool:
        """Secure cookies behind https: the request came over it, or the public URL says so."""
        public = urlsplit(self.settings.service.public_url).scheme
        return request.url.scheme == "https" or public == "https"


def build_site(service: Service) -> Site:
    env = Environment(
        loader=PackageLoader("kadrio_server", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Site(service=service, secret=secret_key(service.settings), templates=env)


def site_of(request: Request) -> Site:
    return request.app.state.site
