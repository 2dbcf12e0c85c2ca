"""In Debian's Chromium (Playwright, no browser download): Yandex Metrica's script is requested
only after "Accept all" — never on the first visit, never after "Necessary only" — and the choice
can be changed from the footer. Every request leaving 127.0.0.1 is intercepted: Metrica's are
recorded and answered locally, anything else is aborted and fails the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kadrio_server.app import create_app
from kadrio_server.service import Service

from .billing_helpers import settings_for
from .fakes.seaweedfs import free_ports

CHROMIUM = Path("/usr/bin/chromium")
COUNTER = "98765432"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def live_site(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    settings = settings_for(tmp_path / "data", privacy={"metrica_counter_id": COUNTER})
    port = free_ports(1)[0]
    app = create_app(service=Service(settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


class Outside:
    """Requests that leave the site: Metrica's answered with a stub, the rest aborted."""

    def __init__(self) -> None:
        self.metrica: list[str] = []
        self.other: list[str] = []

    def handle(self, route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if host == "127.0.0.1":
            route.continue_()
        elif host == "mc.yandex.ru":
            self.metrica.append(url)
            route.fulfill(
                status=200,
                content_type="application/javascript",
                body="window.__metricaStub = true;",
            )
        else:
            self.other.append(url)
            route.abort()


def wait_for_stub(page: Any) -> None:
    """Until Metrica's (stubbed) tag ran; polled from here: the page's CSP forbids eval."""
    deadline = time.monotonic() + 10
    while page.evaluate("window.__metricaStub") is not True:
        assert time.monotonic() < deadline, "Metrica's tag did not run"
        time.sleep(0.05)


def visit(browser: Any) -> tuple[Any, Any, Outside]:
    context = browser.new_context(locale="en-US")
    outside = Outside()
    context.route("**/*", outside.handle)
    return context, context.new_page(), outside


def test_metrica_is_requested_only_after_accept_all(browser: Any, live_site: str) -> None:
    context, page, outside = visit(browser)
    page.goto(live_site + "/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#cookie-banner").is_visible()
    assert outside.metrica == []
    assert page.evaluate("typeof window.ym") == "undefined"
    assert {c["name"] for c in context.cookies()} <= {"kadrio_csrf", "kadrio_session"}

    # "Necessary only": the banner goes, Metrica never comes, on any page
    page.click("#cookies-necessary")
    page.wait_for_load_state("networkidle")
    assert page.locator("#cookie-banner").count() == 0
    for path in ("/", "/privacy", "/signin"):
        page.goto(live_site + path)
        page.wait_for_load_state("networkidle")
    assert outside.metrica == []
    assert page.evaluate("typeof window.ym") == "undefined"

    # changed from the footer: "Accept all" loads Metrica's tag, allowed by the page's CSP
    page.click("#cookie-settings")
    page.wait_for_url("**/cookies")
    assert "Yandex Metrica is off" in page.inner_text("#cookie-state")
    page.click("#cookies-accept")
    page.wait_for_load_state("networkidle")
    assert "Yandex Metrica is on" in page.inner_text("#cookie-state")
    wait_for_stub(page)
    assert outside.metrica == ["https://mc.yandex.ru/metrika/tag.js"]
    assert page.evaluate("typeof window.ym") == "function"

    # and back to "Necessary only": nothing more is requested
    page.click("#cookies-necessary")
    page.wait_for_load_state("networkidle")
    page.goto(live_site + "/")
    page.wait_for_load_state("networkidle")
    assert outside.metrica == ["https://mc.yandex.ru/metrika/tag.js"]
    assert outside.other == []
    assert {c["name"] for c in context.cookies()} <= {"kadrio_csrf", "kadrio_session"}
    context.close()


def test_accept_all_from_the_banner(browser: Any, live_site: str) -> None:
    context, page, outside = visit(browser)
    page.goto(live_site + "/privacy")
    page.wait_for_load_state("networkidle")
    assert outside.metrica == []
    page.click("#cookies-accept")
    wait_for_stub(page)
    assert page.url == live_site + "/privacy"  # back where the visitor was
    assert outside.metrica == ["https://mc.yandex.ru/metrika/tag.js"]
    assert outside.other == []
    context.close()
