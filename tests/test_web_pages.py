"""The web app's pages: security headers and a CSP the templates keep to, Russian and English
everywhere (catalogs complete, Accept-Language, the sticky switch, dates and numbers per
locale), the landing page with the plans, the privacy policy with the operator's details, and
clear 404 and 500 pages."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from babel.dates import format_date

from kadrio_server.db import utcnow
from kadrio_server.users import create_user
from kadrio_server.web import i18n
from kadrio_server.web.upload import EXPLAINED

from .browser.support import Web, csrf_of, make_web, sign_in

SERVER = Path(resources.files("kadrio_server"))  # type: ignore[arg-type]
TEMPLATES = sorted((SERVER / "templates").glob("*.html"))
PAGES = ["/", "/signin", "/privacy", "/legal/privacy"]
MEMBER_PAGES = ["/dashboard", "/upload", "/account/data", "/account/tokens"]


@pytest.fixture
def web(tmp_path: Path) -> Web:
    return make_web(
        tmp_path / "data",
        operator={"name": "Ivan Petrov", "tax_id": "7700000000", "email": "privacy@example.org"},
    )


def _lang(html: str) -> str:
    found = re.search(r'<html lang="(\w+)"', html)
    assert found
    return found.group(1)


# -- security headers and the templates --------------------------------------------------------


def test_security_headers_on_pages_and_api(web: Web) -> None:
    browser = web.client()
    for path in [*PAGES, "/nope", "/api/v1/consent", "/static/kadrio.css"]:
        response = browser.get(path)
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", path
        assert directives["default-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == "'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


def test_media_from_the_s3_endpoint_is_allowed_and_nothing_else(tmp_path: Path) -> None:
    web = make_web(
        tmp_path / "data",
        storage="s3",
        providers={"s3": {"bucket": "clips", "endpoint_url": "https://s3.ru-1.example.net"}},
    )
    csp = web.client().get("/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["media-src"] == "'self' https://s3.ru-1.example.net"
    assert directives["img-src"] == "'self' https://s3.ru-1.example.net"
    assert directives["script-src"] == "'self'"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_code_or_third_party_resources(template: Path) -> None:
    html = template.read_text()
    for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S):
        assert script.strip() == "", "inline script"
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"\son[a-z]+\s*=\s*[\"']", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=\s*[\"']", html), "inline style"
    assert "<style" not in html
    for url in re.findall(r'(?:src|href|action)="([^"{]+)"', html):
        assert url.startswith(("/", "#", "mailto:")), url


def test_static_scripts_use_no_eval() -> None:
    for script in (SERVER / "static").glob("*.js"):
        code = script.read_text()
        assert "eval(" not in code and "new Function" not in code and "innerHTML" not in code


# -- languages ------------------------------------------------------------------------------


def test_catalogs_are_complete_in_both_languages() -> None:
    en, ru = i18n.catalog("en"), i18n.catalog("ru")
    assert set(en) == set(ru)
    for key, value in ru.items():
        if isinstance(value, dict):
            assert {"one", "few", "many", "other"} <= set(value), key
            assert set(en[key]) >= {"one", "other"}, key
        else:
            assert value.strip() and en[key].strip(), key
            placeholders = set(re.findall(r"\{(\w+)\}", en[key]))
            assert placeholders == set(re.findall(r"\{(\w+)\}", value)), key
    cyrillic = [k for k, v in ru.items() if re.search("[а-яё]", json.dumps(v, ensure_ascii=False))]
    assert len(cyrillic) > 0.85 * len(ru)


def test_every_text_used_exists() -> None:
    catalog = i18n.catalog("en")
    used: set[str] = set()
    for template in TEMPLATES:
        # whole keys only: t('key') or t('key', ...), not t('prefix.' ~ name)
        used |= set(re.findall(r"\bt\('([a-z0-9_.]+)'\s*[,)]", template.read_text()))
    for module in (SERVER / "web").glob("*.py"):
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', module.read_text()))
        used |= set(re.findall(r'error="([a-z_.]+)"', module.read_text()))
    used |= {f"upload.error.{code}" for code in EXPLAINED}
    missing = sorted(k for k in used if k not in catalog)
    assert missing == []
    # texts picked by prefix in the templates
    for prefix, names in {
        "status": ["queued", "transcribing", "selecting", "rendering", "done", "failed"],
        "error": [f"{c}.title" for c in (400, 403, 404, 405, 413, 415, 429, 500, 503)],
        "lang": ["en", "ru"],
    }.items():
        assert all(f"{prefix}.{name}" in catalog for name in names), prefix


def test_plural_forms_follow_each_language() -> None:
    ru, en = i18n.Translator("ru"), i18n.Translator("en")
    assert [ru("dashboard.clips", count=n) for n in (1, 3, 5, 21)] == [
        "1 клип",
        "3 клипа",
        "5 клипов",
        "21 клип",
    ]
    assert [en("dashboard.clips", count=n) for n in (1, 2)] == ["1 clip", "2 clips"]
    assert ru.size(1536 * 1024) == "1,5 МБ" and en.size(1536 * 1024) == "1.5 MB"
    assert ru.number(1234567) == "1\xa0234\xa0567" and en.number(1234567) == "1,234,567"


def test_language_from_accept_language_and_a_switch_that_sticks(web: Web) -> None:
    assert i18n.negotiate("de-DE,de;q=0.9,ru;q=0.8,en;q=0.5") == "ru"
    assert i18n.negotiate("fr") == "en"
    browser = web.client()
    for path in PAGES:
        assert _lang(browser.get(path, headers={"Accept-Language": "ru-RU"}).text) == "ru"
        assert _lang(browser.get(path, headers={"Accept-Language": "en-US"}).text) == "en"
    english = browser.get("/signin", headers={"Accept-Language": "en"})
    assert "Sign in" in english.text
    switched = browser.post(
        "/language",
        data={"csrf": csrf_of(english.text), "lang": "ru", "next": "/signin?next=/upload"},
        headers={"Accept-Language": "en"},
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signin?next=/upload"
    for path in PAGES:
        page = browser.get(path, headers={"Accept-Language": "en"})
        assert _lang(page.text) == "ru", path
    assert "Вход" in browser.get("/signin", headers={"Accept-Language": "en"}).text
    # "next" never leads off the site
    page = browser.get("/")
    away = browser.post(
        "/language", data={"csrf": csrf_of(page.text), "lang": "en", "next": "//evil.example/"}
    )
    assert away.headers["location"] == "/"


def test_the_switch_is_saved_on_the_account(web: Web) -> None:
    browser = web.client()
    sign_in(web, browser, "lang@example.org")
    page = browser.get("/dashboard")
    assert _lang(page.text) == "en"
    browser.post("/language", data={"csrf": csrf_of(page.text), "lang": "ru", "next": "/"})
    user = web.service.db.one("SELECT language FROM users WHERE email = 'lang@example.org'")
    assert user is not None and user["language"] == "ru"
    # another browser of the same account gets Russian at once, whatever it sends
    other = web.client(**{"Accept-Language": "en"})
    sign_in(web, other, "lang@example.org")
    assert _lang(other.get("/dashboard").text) == "ru"


def test_member_pages_in_both_languages(web: Web) -> None:
    for lang, word in (("en", "Your videos"), ("ru", "Мои видео")):
        create_user(web.service.db, f"{lang}@example.org", language=lang)
        browser = web.client()
        sign_in(web, browser, f"{lang}@example.org")
        for path in MEMBER_PAGES:
            page = browser.get(path)
            assert page.status_code == 200, path
            assert _lang(page.text) == lang
        assert word in browser.get("/dashboard").text
    # signed out, they send to sign-in and come back
    away = web.client().get("/account/data")
    assert away.status_code == 303 and away.headers["location"] == "/signin?next=%2Faccount%2Fdata"


def test_dates_in_the_chosen_locale(web: Web) -> None:
    create_user(web.service.db, "date@example.org", language="ru")
    browser = web.client()
    sign_in(web, browser, "date@example.org")
    page = browser.get("/account/data").text
    today = format_date(utcnow().date(), "d MMM y", locale="ru")
    assert today in page
    # the policy's "updated" date too
    assert "6 мая 2026" in browser.get("/privacy").text
    assert "May 6, 2026" in web.client().get("/privacy", headers={"Accept-Language": "en"}).text


# -- pages ---------------------------------------------------------------------------------


def test_landing_page_says_what_it_does_and_shows_the_plans(web: Web) -> None:
    en = web.client().get("/", headers={"Accept-Language": "en"})
    assert en.status_code == 200
    assert "vertical clips" in en.text
    assert 'id="plans"' in en.text
    for title, price in (("Starter", "990"), ("Pro", "2,490"), ("Business", "7,990")):
        assert title in en.text and f"{price} ₽" in en.text
    ru = web.client().get("/", headers={"Accept-Language": "ru"})
    assert "Тарифы" in ru.text and "2\xa0490 ₽" in ru.text


def test_privacy_policy_with_the_operators_details(web: Web) -> None:
    for lang, heading in (("en", "Privacy Policy"), ("ru", "Политика конфиденциальности")):
        page = web.client().get("/privacy", headers={"Accept-Language": lang})
        assert page.status_code == 200
        assert f"<h1>{heading}</h1>" in page.text
        assert "Ivan Petrov" in page.text and "7700000000" in page.text
        assert page.text.count("privacy@example.org") >= 2
    assert web.client().get("/legal/no-such-policy").status_code == 404
    assert web.client().get("/legal/..%2Fsecret_key").status_code == 404


def test_operator_details_are_settings_not_text() -> None:
    for path in (SERVER / "policies").glob("*.md"):
        text = path.read_text()
        assert "Igor" not in text and "Игорь" not in text and "771476601234" not in text
        assert "{operator_name}" in text and "{operator_email}" in text


def test_clear_404_pages_and_json_404_in_the_api(web: Web) -> None:
    page = web.client().get("/no/such/page", headers={"Accept-Language": "ru"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Страница не найдена" in page.text
    api = web.client().get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


def test_500_page(web: Web) -> None:
    from starlette.testclient import TestClient

    async def broken(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    web.app.add_route("/broken-for-test", broken)
    client = TestClient(web.app, raise_server_exceptions=False)
    page = client.get("/broken-for-test", headers={"Accept-Language": "en"})
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.text
    assert "a bug" not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
