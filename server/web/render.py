"""Turning a template into a response: the visitor's language, CSRF token and cookies."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .. import cookies
from ..schemas import LANGUAGES
from . import i18n
from .site import site_of
from .visitors import Visitor, apply_cookies, visitor


def translator(request: Request, found: Visitor) -> i18n.Translator:
    return i18n.Translator(found.lang, site_of(request).settings.service.web.timezone)


def path_for(request: Request, name: str, **params: Any) -> str:
    """The path of a named route (pages link with paths, never with the Host they came on)."""
    return request.app.url_path_for(name, **{k: str(v) for k, v in params.items()})


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site (for ``next=``), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def context(request: Request, found: Visitor) -> dict[str, Any]:
    site = site_of(request)
    t = translator(request, found)
    return {
        "request": request,
        "visitor": found,
        "user": found.user,
        "lang": found.lang,
        "languages": LANGUAGES,
        "t": t,
        "csrf": found.csrf,
        "url": lambda name, **params: path_for(request, name, **params),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "operator": site.settings.operator,
        "settings": site.settings,
    }


def render_page(
    request: Request, found: Visitor, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    site = site_of(request)
    html = site.templates.get_template(template).render(context(request, found) | values)
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    response.headers.update(cookies.response_headers(site.settings, found.analytics))  # Metrica
    apply_cookies(site, request, found, response)
    return response


async def page(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    return render_page(request, await visitor(request), template, status, **values)


async def redirect(request: Request, target: str) -> Response:
    """303 to a path on this site, with the visitor's pending cookies."""
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    return apply_cookies(site_of(request), request, await visitor(request), response)
