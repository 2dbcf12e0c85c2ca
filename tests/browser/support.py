"""Helpers shared by the web app's tests (tests/test_web_*.py and the browser test): the app
in process, the CSRF token of a page, sign-in links read from the outbox."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.testclient import TestClient

from kadrio_core.models import OutputFormat
from kadrio_core.settings import Settings
from kadrio_server.app import create_app
from kadrio_server.service import Service

BASE = "http://testserver"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LINK = re.compile(r"https?://\S+/signin/confirm\?\S+")


def web_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for an app in process: a queue nobody consumes (jobs stay queued) unless a
    test asks for another, small renders, the public URL of the test client."""
    service = {"public_url": BASE} | overrides.pop("service", {})
    fields: dict[str, Any] = {
        "data_dir": data_dir,
        "queue_url": f"sqlite:///{data_dir / 'queue.db'}",
        "output": OutputFormat(width=270, height=480),
        "service": service,
    }
    return Settings(**(fields | overrides))


@dataclass
class Web:
    service: Service
    app: Any

    @property
    def data_dir(self) -> Path:
        return self.service.settings.data_dir

    def client(self, base_url: str = BASE, **headers: str) -> TestClient:
        """A new browser, with its own cookies."""
        return TestClient(self.app, base_url=base_url, headers=headers, follow_redirects=False)

    def outbox(self) -> list[EmailMessage]:
        folder = self.data_dir / "outbox"
        files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
        return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def make_web(data_dir: Path, **overrides: Any) -> Web:
    """The app with its database migrated; clients talk to it without running its lifespan."""
    service = Service(web_settings(data_dir, **overrides))
    service.db.upgrade()
    return Web(service, create_app(service=service))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage) -> str:
    """The sign-in link of an email, as a path + query for the test client."""
    found = _LINK.search(body_of(message))
    assert found, body_of(message)
    parts = urlsplit(found.group(0))
    return f"{parts.path}?{parts.query}"


def request_link(client: TestClient, address: str, **extra: str) -> Any:
    """Ask for a sign-in link the way the form does (personal-data consent ticked)."""
    page = client.get("/signin")
    form = {"csrf": csrf_of(page.text), "email": address, "pd_consent": "yes"}
    return client.post("/signin", data=form | extra)


def confirm(client: TestClient, link: str) -> Any:
    """Open the link's confirm page and press the button (GET then POST, like a person)."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/signin/confirm", data={"csrf": csrf_of(page.text), "token": token.group(1)}
    )


def sign_in(web: Web, client: TestClient, address: str) -> None:
    """Sign ``client`` in as ``address`` through the emailed link."""
    before = len(web.outbox())
    assert request_link(client, address).status_code == 200
    messages = web.outbox()
    assert len(messages) == before + 1
    done = confirm(client, link_in(messages[-1]))
    assert done.status_code == 303, done.text
