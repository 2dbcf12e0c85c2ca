"""The web app in Debian's Chromium, driven by Playwright, against a real ``kadrio serve
--with-worker`` on 127.0.0.1: sign in through the emailed link, upload a short video by drag
and drop with consent (the first attempt's connection is dropped and the page restarts it),
wait for the clip, play it, create and revoke an API token, switch to Russian, delete the job.
Screenshots of the main pages go to tests/artifacts/ (desktop and phone sizes)."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Route, sync_playwright

from ..conftest import FIXTURES, KADRIO
from .support import body_of

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    url: str
    data_dir: Path
    log: Path

    def outbox_link(self, count: int) -> str:
        import email
        from email import policy

        deadline = time.monotonic() + 10
        files: list[Path] = []
        while time.monotonic() < deadline:
            files = sorted((self.data_dir / "outbox").glob("*.eml"))
            if len(files) >= count:
                break
            time.sleep(0.1)
        assert len(files) >= count, "no sign-in email in the outbox"
        message = email.message_from_bytes(files[count - 1].read_bytes(), policy=policy.default)
        found = re.search(r"http://\S+/signin/confirm\?\S+", body_of(message))
        assert found
        return found.group(0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(isolated_settings: Path, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "KADRIO_SERVICE__PUBLIC_URL": url,
        "KADRIO_MAX_CLIPS": "1",  # one small clip keeps the test fast
        "KADRIO_MIN_SECONDS": "10",
        "KADRIO_MAX_SECONDS": "20",
        "KADRIO_OUTPUT__WIDTH": "270",
        "KADRIO_OUTPUT__HEIGHT": "480",
        "KADRIO_SERVICE__OPERATOR__NAME": "",
    }
    env.pop("KADRIO_SERVICE__OPERATOR__NAME")
    env |= {"KADRIO_OPERATOR__NAME": "Test Operator", "KADRIO_OPERATOR__EMAIL": "op@example.org"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(KADRIO), "serve", "--with-worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "kadrio serve did not start:\n" + log.read_text()
            time.sleep(0.3)
        yield Server(url, isolated_settings, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def drop_file(page: Page, path: Path) -> None:
    """Drop ``path`` on the upload zone the way a person's drag and drop does."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
            return transfer;
        }""",
        [path.name, data],
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


@pytest.mark.timeout(300)
def test_sign_in_upload_play_switch_language_delete(server: Server) -> None:
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install chromium"
    base = server.url
    problems: list[str] = []
    foreign: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: None if r.url.startswith((base, "data:", "blob:")) else foreign.append(r.url),
        )

        # the landing page and the policy, in English from Accept-Language
        page.goto(base + "/")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("#plans").is_visible()
        shot(page, "landing-en")
        page.goto(base + "/privacy")
        assert "Test Operator" in page.content()
        shot(page, "privacy-en")

        # sign in: the link from the outbox opens a confirm page; its button signs in
        page.goto(base + "/signin")
        shot(page, "signin-en")
        page.fill("#email", "browser@example.org")
        page.check("#pd_consent")  # the personal-data consent asked for at sign-in
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#sent")
        shot(page, "signin-sent-en")
        page.goto(server.outbox_link(1))
        shot(page, "signin-confirm-en")
        page.click("#confirm")
        page.wait_for_url(base + "/dashboard")
        shot(page, "dashboard-empty-en")

        # upload: drag and drop, consent ticked, the first connection dropped
        page.goto(base + "/upload")
        assert not page.is_checked("#consent")  # unchecked by default
        shot(page, "upload-en")
        drop_file(page, FIXTURES / "talk.mp4")
        assert page.inner_text("#file-name") == "talk.mp4"
        page.click("#upload-button")
        assert "consent" in page.inner_text("#upload-error").lower()  # refused without it
        page.check("#consent")
        attempts: list[str] = []

        def drop_first(route: Route) -> None:
            attempts.append(route.request.method)
            if len(attempts) == 1:
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route(base + "/upload", drop_first)
        page.click("#upload-button")
        page.wait_for_url(re.compile(r".*/jobs/[0-9a-f]{32}$"), timeout=60_000)
        page.unroute(base + "/upload")
        assert attempts == ["POST", "POST"]  # restarted after the dropped connection
        job_url = page.url
        shot(page, "job-processing-en")

        # the page follows the job live and shows the clip when it is done
        page.wait_for_selector("video.player", timeout=180_000)
        assert page.locator("video.player").count() == 1
        title = page.inner_text(".clip h3")
        assert title.strip()
        assert "Score" in page.inner_text(".clip .score")
        assert page.locator("#transcript").count() == 1
        started = page.eval_on_selector(
            "video.player",
            "v => { v.muted = true; return v.play().then(() => 'playing', e => String(e)); }",
        )
        assert started == "playing"
        page.wait_for_function(
            "() => document.querySelector('video.player').readyState >= 2", timeout=30_000
        )
        page.wait_for_function("() => document.querySelector('video.player').currentTime > 0.2")
        mp4 = page.get_attribute("a[download$='.mp4']", "href")
        srt = page.get_attribute("a[download$='.srt']", "href")
        assert mp4 and srt
        video = page.request.get(base + mp4)
        assert video.status == 200 and video.headers["content-type"] == "video/mp4"
        subtitles = page.request.get(base + srt)
        assert subtitles.status == 200 and "-->" in subtitles.text()
        page.eval_on_selector("video.player", "v => v.pause()")
        shot(page, "job-done-en")

        page.goto(base + "/dashboard")
        assert page.locator(".job").count() == 1
        assert "Done" in page.inner_text(".job .status-label")
        shot(page, "dashboard-en")
        page.goto(base + "/account/data")
        assert "talk.mp4" in page.inner_text("#data-jobs")
        assert page.inner_text("#data-jobs .retention").strip()  # the deletion date
        shot(page, "your-data-en")

        # an API token made in the page works against the API until it is revoked
        page.goto(base + "/account/tokens")
        page.click("#create-token")
        token = page.inner_text("#new-token").strip()
        shot(page, "tokens-en")
        me = page.request.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status == 200 and me.json()["email"] == "browser@example.org"
        page.click("#tokens tr.active button")
        page.wait_for_url(base + "/account/tokens")
        me = page.request.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status == 401

        # switch to Russian on the job page: it sticks across pages
        page.goto(job_url)
        page.click("button.lang-ru")
        page.wait_for_load_state()
        assert page.url == job_url
        assert page.locator("html").get_attribute("lang") == "ru"
        assert "Удалить" in page.inner_text("#delete-job")
        shot(page, "job-done-ru")
        page.goto(base + "/dashboard")
        assert "Готово" in page.inner_text(".job .status-label")
        shot(page, "dashboard-ru")
        page.set_viewport_size(PHONE)
        for path, name in (
            ("/dashboard", "dashboard-ru-phone"),
            (job_url.removeprefix(base), "job-done-ru-phone"),
            ("/upload", "upload-ru-phone"),
            ("/account/data", "your-data-ru-phone"),
            ("/", "landing-ru-phone"),
        ):
            page.goto(base + path)
            shot(page, name)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways on a phone"
        page.set_viewport_size({"width": 1280, "height": 900})

        # delete with confirmation: everything of the job is gone
        page.goto(job_url)
        page.click("#delete-job")
        shot(page, "delete-confirm-ru")
        page.click("#confirm-delete")
        page.wait_for_url(base + "/dashboard?deleted=1")
        assert page.locator(".job").count() == 0
        assert page.locator(".notice").is_visible()
        shot(page, "dashboard-deleted-ru")
        missing = page.goto(job_url)
        assert missing is not None and missing.status == 404
        shot(page, "not-found-ru")
        browser.close()

    job_id = job_url.rsplit("/", 1)[1]
    left = [p for p in server.data_dir.rglob("*") if job_id in str(p)]
    assert left == [], left
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert foreign == [], f"requests to other sites: {foreign}"
