"""Error pages for people (404, 403, 500...) in their language; the API keeps its JSON errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .headers import security_headers
from .render import render_page
from .site import site_of
from .visitors import anonymous, visitor

log = logging.getLogger("kadrio.web")
Handler = Callable[[Request, Exception], Awaitable[Response]]
PAGES = (400, 403, 404, 405, 413, 415, 429, 500, 503)


class SignInRequired(Exception):
    """A page for signed-in users was asked for by a visitor who is not: go to sign-in."""


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def error_page(request: Request, status: int, use_db: bool = True) -> Response:
    found = None
    if use_db:
        try:
            found = await visitor(request)
        except Exception:  # the database may be what failed
            log.warning("no visitor for the %s page", status, exc_info=True)
    found = found or anonymous(request)
    key = status if status in PAGES else 400 if status < 500 else 500
    response = render_page(request, found, "error.html", status=status, code=key)
    if not use_db:  # the 500 page is sent outside the middleware that adds these
        https = request.url.scheme == "https"
        response.headers.update(
            {k.decode(): v.decode() for k, v in security_headers(site_of(request).settings, https)}
        )
    return response


def exception_handlers(api: dict[Any, Handler]) -> dict[Any, Handler]:
    """The API's handlers for /api/..., error pages elsewhere."""

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if wants_json(request) or exc.status_code in (204, 304):
            return await api[HTTPException](request, exc)
        return await error_page(request, exc.status_code)

    async def internal(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return await api[Exception](request, exc)
        try:
            return await error_page(request, 500, use_db=False)
        except Exception:
            log.exception("the 500 page itself failed")
            return await api[Exception](request, exc)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target})
        return RedirectResponse(f"/signin?{query}", status_code=303)

    return {
        **api,
        HTTPException: http_exception,
        Exception: internal,
        SignInRequired: sign_in_required,
    }
