"""Cookie consent and Yandex Metrica.

Without consent the site sets only its session and CSRF cookies. When a Metrica counter is
configured (``KADRIO_PRIVACY__METRICA_COUNTER_ID``), the first visit shows a banner with "Accept
all" and "Necessary only" (plain forms: it works without JavaScript); the answer is kept in the
session cookie (no cookie of its own) and can be changed from the footer ("Cookie settings").
Only after "Accept all" do pages load ``/static/metrica.js`` (which injects Metrica's tag.js) and
get a Content-Security-Policy that allows Metrica's hosts; otherwise the policy names none of
them. With no counter configured there is nothing to consent to: no banner, no link.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kadrio_core.settings import Settings

CHOICES = ("all", "necessary")
# The hosts Metrica's tag loads from and reports to (tag.js, the /watch pixel, its XHRs).
METRICA_CSP: dict[str, list[str]] = {
    "script-src": ["https://mc.yandex.ru", "https://yastatic.net"],
    "img-src": ["https://mc.yandex.ru"],
    "connect-src": ["https://mc.yandex.ru"],
}


def counter(settings: Settings) -> str | None:
    return settings.privacy.metrica_counter_id


def analytics_on(settings: Settings, choice: str | None) -> bool:
    return bool(counter(settings)) and choice == "all"


def response_headers(settings: Settings, choice: str | None) -> dict[str, str]:
    """Headers a page needs for the visitor's choice: Metrica's hosts only after consent."""
    if not analytics_on(settings, choice):
        return {}
    from .web.headers import content_security_policy

    return {"content-security-policy": content_security_policy(settings, METRICA_CSP)}


async def settings_page(request: Request) -> Response:
    from .web.render import page
    from .web.site import site_of

    if not counter(site_of(request).settings):
        raise HTTPException(404)
    return await page(request, "cookies.html")


async def choose(request: Request) -> Response:
    """The banner's and the settings page's forms: ``choice`` = all | necessary."""
    from .web.forms import read_form
    from .web.render import local_path, redirect
    from .web.visitors import remember, visitor

    form = await read_form(request)
    choice = form.get("choice")
    if choice not in CHOICES:
        raise HTTPException(400, "choose all or necessary")
    found = await visitor(request)
    found.analytics = choice
    remember(found, found.sid, found.chosen_lang)
    return await redirect(request, local_path(form.get("next")))


routes = [
    Route("/cookies", settings_page, methods=["GET"], name="cookies"),
    Route("/cookies", choose, methods=["POST"], name="cookies_choose"),
]
