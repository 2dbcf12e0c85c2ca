"""Who may see a page: signed-in visitors only, or a JSON 401 for the pages' own endpoints."""

from __future__ import annotations

from starlette.requests import Request

from ..db import Row
from ..errors import ApiError
from .errors import SignInRequired
from .visitors import Visitor, visitor


async def member(request: Request) -> tuple[Visitor, Row]:
    """The signed-in visitor and their user row; others are sent to the sign-in page."""
    found = await visitor(request)
    if found.user is None:
        raise SignInRequired()
    return found, found.user


async def member_json(request: Request) -> tuple[Visitor, Row]:
    found = await visitor(request)
    if found.user is None:
        raise ApiError(401, "unauthorized", "sign in first")
    return found, found.user
