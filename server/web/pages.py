"""Pages anyone may see: the landing page, the policies, and the language switch."""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kadrio_core.settings import Settings

from . import i18n, policies
from .forms import read_form
from .render import local_path, page, redirect
from .site import site_of
from .visitors import remember, visitor

log = logging.getLogger("kadrio.web")


def plans_on_offer(settings: Settings) -> list[Any]:
    """The plans from the plans file, in order (none when it cannot be read)."""
    try:
        from ..plans import load_plans

        return load_plans(settings).ordered()
    except Exception:
        log.exception("the plans could not be loaded for the landing page")
        return []


async def landing(request: Request) -> Response:
    settings = site_of(request).settings
    plans = await run_in_threadpool(plans_on_offer, settings)
    return await page(request, "landing.html", plans=plans)


async def policy(request: Request) -> Response:
    found = await visitor(request)
    name = request.path_params.get("name", "privacy")
    t = i18n.Translator(found.lang)
    try:
        document = policies.render(name, found.lang, site_of(request).settings, t("policy.unset"))
    except FileNotFoundError:
        raise HTTPException(404) from None
    return await page(request, "policy.html", policy=document)


async def switch_language(request: Request) -> Response:
    """The sticky switch: kept in the session cookie, and on the account when signed in."""
    form = await read_form(request)
    found = await visitor(request)
    lang = i18n.supported(form.get("lang"))
    if lang is None:
        raise HTTPException(400, "unknown language")
    if found.user is not None:
        db = site_of(request).service.db
        await run_in_threadpool(
            db.execute, "UPDATE users SET language = ? WHERE id = ?", (lang, found.user["id"])
        )
        found.user["language"] = lang
    remember(found, found.sid, lang)
    found.lang = lang
    return await redirect(request, local_path(form.get("next")))
