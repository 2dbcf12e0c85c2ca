"""Sign-in by magic link and sign-out (the flow is described in magic_links)."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from kadrio_core.errors import BadInput

from .. import privacy, techlog
from ..users import normalise_email
from . import magic_links
from .forms import read_form
from .render import local_path, page, redirect
from .site import site_of
from .visitors import end_session, remember, start_session, visitor

log = logging.getLogger("kadrio.web")


def _next(value: str | None) -> str:
    return local_path(value, "/dashboard")


async def sign_in_form(request: Request) -> Response:
    found = await visitor(request)
    target = _next(request.query_params.get("next"))
    if found.user is not None:
        return await redirect(request, target)
    return await page(request, "signin.html", next=target, email="", error=None)


async def request_link(request: Request) -> Response:
    form = await read_form(request)
    found = await visitor(request)
    site = site_of(request)
    target = _next(form.get("next"))
    raw = form.get("email", "")
    try:
        email = normalise_email(raw)
    except BadInput:
        return await page(
            request, "signin.html", status=400, next=target, email=raw, error="signin.bad_email"
        )
    if form.get("pd_consent") != "yes":  # 152-FZ: recorded with the account at first sign-in
        return await page(
            request, "signin.html", status=400, next=target, email=raw, error="pdconsent.required"
        )
    web = site.settings.service.web
    limits = magic_links.Limits(web.sign_in_per_address, web.sign_in_per_ip)
    ip = request.client.host if request.client else "unknown"
    try:
        await run_in_threadpool(magic_links.check_rate, site, email, ip, limits)
    except magic_links.RateLimited:
        return await page(
            request, "signin.html", status=429, next=target, email=raw, error="signin.rate_limited"
        )
    try:
        await run_in_threadpool(magic_links.send_link, site, email, found.lang, target)
    except Exception:
        log.exception("the sign-in email could not be sent")
        return await page(
            request, "signin.html", status=503, next=target, email=raw, error="signin.send_failed"
        )
    # the same page whether or not the address has an account
    return await page(request, "signin_sent.html", email=email)


async def confirm_form(request: Request) -> Response:
    token = request.query_params.get("token", "")
    db = site_of(request).service.db
    link = await run_in_threadpool(magic_links.peek_link, db, token)
    if link is None:
        return await page(request, "signin_invalid.html", status=400)
    target = _next(request.query_params.get("next"))
    return await page(request, "signin_confirm.html", token=token, email=link["email"], next=target)


async def confirm(request: Request) -> Response:
    form = await read_form(request)
    found = await visitor(request)
    site = site_of(request)
    db = site.service.db
    link = await run_in_threadpool(magic_links.redeem_link, db, form.get("token", ""))
    if link is None:
        await run_in_threadpool(techlog.record_request, db, "sign_in_failed", request)
        return await page(request, "signin_invalid.html", status=400)
    user = await run_in_threadpool(magic_links.account_for, db, link["email"], link["language"])
    if user.get("deactivated_at") is not None:
        return await page(request, "signin_closed.html", status=403)
    # the link was asked for with the personal-data consent ticked: record its version, once
    await run_in_threadpool(privacy.accept_personal_data, db, user["id"])
    sid = await run_in_threadpool(start_session, site, user["id"], found.sid)
    await run_in_threadpool(techlog.record_request, db, "sign_in", request, user["id"])
    found.user = user
    found.lang = user["language"]
    remember(found, sid, user["language"])
    return await redirect(request, _next(form.get("next")))


async def sign_out(request: Request) -> Response:
    await read_form(request)
    found = await visitor(request)
    if found.sid is not None:
        await run_in_threadpool(end_session, site_of(request).service.db, found.sid)
    remember(found, None, found.lang)
    found.user = None
    return await redirect(request, "/")
