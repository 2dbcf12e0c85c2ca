"""The account pages: "Your data" (everything stored for the account, with each job's
deletion date, also as a JSON download) and the API tokens, created and revoked here."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import jobs
from ..auth import create_token, revoke_token
from ..db import Row
from ..service import Service, job_prefix
from .forms import read_form
from .guards import member
from .render import page, redirect
from .retention import job_retention
from .site import site_of
from .visitors import user_sessions

JOBS_LISTED = 500


def stored_data(service: Service, user: Row) -> dict[str, Any]:
    """Every row and object kept for the account (the same for the page and the download)."""
    db = service.db
    uid = user["id"]
    job_rows = jobs.list_jobs(service, uid, JOBS_LISTED, None)
    job_list = []
    for job in job_rows:
        prefix = job_prefix(uid, job["id"])
        objects = [key.removeprefix(prefix) for key in service.storage.list(prefix)]
        media = json.loads(job["media"])
        job_list.append(
            {
                "id": job["id"],
                "source_name": job["source_name"],
                "source_size": job["source_size"],
                "duration": media.get("duration"),
                "status": job["status"],
                "clip_count": job["clip_count"],
                "created_at": job["created_at"],
                "expires_at": job_retention(service.settings, user, job),
                "objects": objects,
            }
        )
    return {
        "account": {
            "id": uid,
            "email": user["email"],
            "plan": user["plan"],
            "plan_until": user.get("plan_until"),
            "language": user["language"],
            "created_at": user["created_at"],
        },
        "jobs": job_list,
        "sessions": user_sessions(db, uid),
        "api_tokens": db.all(
            "SELECT id, prefix, created_at, last_used_at, revoked_at FROM api_tokens "
            "WHERE user_id = ? ORDER BY created_at DESC",
            (uid,),
        ),
        "consents": db.all(
            "SELECT kind, version, given_at, job_id FROM consents WHERE user_id = ? "
            "ORDER BY given_at DESC",
            (uid,),
        ),
        "technical_log": db.all(
            "SELECT event, ip, user_agent, created_at FROM techlog WHERE user_id = ? "
            "ORDER BY created_at DESC",
            (uid,),
        ),
        "invoices": db.all(
            "SELECT number, plan, amount_kopecks, currency, status, created_at, paid_at "
            "FROM invoices WHERE user_id = ? ORDER BY created_at DESC",
            (uid,),
        ),
        "emails": db.all(
            "SELECT kind, created_at, sent_at FROM mailings WHERE user_id = ? "
            "ORDER BY created_at DESC",
            (uid,),
        ),
        "sign_in_links": db.all(
            "SELECT created_at, expires_at, used_at FROM sign_in_links WHERE email = ? "
            "ORDER BY created_at DESC",
            (user["email"],),
        ),
    }


async def your_data(request: Request) -> Response:
    _, user = await member(request)
    data = await run_in_threadpool(stored_data, site_of(request).service, user)
    return await page(request, "data.html", data=data)


async def your_data_json(request: Request) -> Response:
    _, user = await member(request)
    data = await run_in_threadpool(stored_data, site_of(request).service, user)
    body = json.dumps(data, default=str, ensure_ascii=False, indent=2)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="kadrio-data.json"',
            "Cache-Control": "no-store",
        },
    )


def _tokens(service: Service, user_id: str) -> list[Row]:
    return service.db.all(
        "SELECT id, prefix, created_at, last_used_at, revoked_at FROM api_tokens "
        "WHERE user_id = ? ORDER BY revoked_at IS NOT NULL, created_at DESC",
        (user_id,),
    )


async def tokens(request: Request) -> Response:
    _, user = await member(request)
    rows = await run_in_threadpool(_tokens, site_of(request).service, user["id"])
    return await page(request, "tokens.html", tokens=rows, new_token=None)


async def create(request: Request) -> Response:
    await read_form(request)
    _, user = await member(request)
    service = site_of(request).service
    token, _ = await run_in_threadpool(create_token, service.db, user["email"])
    rows = await run_in_threadpool(_tokens, service, user["id"])
    # shown once, in this response only: it is not stored anywhere readable
    return await page(request, "tokens.html", tokens=rows, new_token=token)


async def revoke(request: Request) -> Response:
    await read_form(request)
    _, user = await member(request)
    service = site_of(request).service
    token_id = request.path_params["token_id"]
    owned = await run_in_threadpool(
        service.db.one,
        "SELECT id FROM api_tokens WHERE id = ? AND user_id = ?",
        (token_id, user["id"]),
    )
    if owned is None:
        raise HTTPException(404)
    await run_in_threadpool(revoke_token, service.db, token_id)
    return await redirect(request, "/account/tokens")
