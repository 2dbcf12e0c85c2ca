"""Reading the pages' small urlencoded forms, with a size cap and the CSRF check.

Uploads do not come through here: they stream through kadrio_server.uploads like the API's.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request

from .visitors import Visitor, csrf_ok, visitor

FORM_LIMIT = 16 * 1024
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class Forbidden(HTTPException):
    """403: the form's CSRF token (or the request's origin) is not this visitor's."""

    def __init__(self) -> None:
        super().__init__(403, "the form has expired or did not come from this site")


def same_origin(request: Request) -> bool:
    """Browsers send Origin with every POST; one from another site is refused outright."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the last value of each), after the CSRF check."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        await check_csrf(request, None)  # no token can come any other way: 403
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise HTTPException(413, "the form is too large")
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    await check_csrf(request, fields.get(CSRF_FIELD))
    return fields


async def check_csrf(request: Request, submitted: str | None) -> Visitor:
    found = await visitor(request)
    if not same_origin(request) or not csrf_ok(found, submitted):
        raise Forbidden()
    return found
