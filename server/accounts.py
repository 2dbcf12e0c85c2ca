"""Closing an account: deactivated at once, erased by the periodic task within 30 days.

``close_account`` (the dashboard's "Delete account", ``DELETE /api/v1/me``, or ``kadrio users
delete EMAIL``) stops the account working at once: it is marked deactivated, its API tokens are
revoked, its web sessions and sign-in links removed, its jobs hidden and queued for erasure,
and a confirmation email is sent. ``erase_account`` (the periodic task) then removes every
trace: jobs with their clips, transcripts, previews and sources (the same cascade as "Delete"),
everything left under the user's storage prefix, tokens, consents, technical logs, usage and
emails. Payment records keep only what accounting law requires (invoice number, amount,
currency, status, dates); their link to the user is cut.
"""

from __future__ import annotations

import logging
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import jobs, mailings, techlog
from .auth import require_user
from .db import Row, Tx, utcnow
from .service import Service

log = logging.getLogger("kadrio.server")
ERASE_WITHIN_DAYS = 30

# The web app's browser sessions (by user) and unused sign-in links (by address): removed at
# once when the account closes.


def close_account(service: Service, user_id: str, now: datetime | None = None) -> bool:
    """Deactivate now; False if it was closed already (asking twice is not an error)."""
    now = now or utcnow()
    with service.db.transaction() as tx:
        if not tx.execute(
            "UPDATE users SET deactivated_at = ? WHERE id = ? AND deactivated_at IS NULL",
            (now, user_id),
        ):
            return False
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            (now, user_id),
        )
        _delete_web_rows(tx, user_id)
        tx.execute(
            "UPDATE jobs SET deleted_at = ?, updated_at = ? "
            "WHERE user_id = ? AND deleted_at IS NULL",
            (now, now, user_id),
        )
        mailings.enqueue(
            tx,
            user_id,
            "account_deleted",
            now.isoformat(),
            {"days": ERASE_WITHIN_DAYS},
            now,
        )
    log.info("account %s closed; erasure pending", user_id)
    try:
        mailings.deliver(service, only_user=user_id)
    except Exception:
        log.exception("account deletion email not sent now; the periodic task retries")
    return True


def closed_accounts(service: Service) -> list[Row]:
    return service.db.all(
        "SELECT id, deactivated_at FROM users WHERE deactivated_at IS NOT NULL "
        "ORDER BY deactivated_at"
    )


def erase_account(service: Service, user_id: str) -> None:
    """Remove everything of a closed account; raises (to be retried) while anything is left."""
    user = service.db.one("SELECT id, deactivated_at FROM users WHERE id = ?", (user_id,))
    if user is None:
        return
    if user["deactivated_at"] is None:
        raise ValueError(f"account {user_id} is not closed")
    mailings.deliver(service, only_user=user_id)  # the confirmation, if it failed before
    for row in service.db.all("SELECT id FROM jobs WHERE user_id = ?", (user_id,)):
        jobs.erase_job(service, row["id"])
    prefix = f"users/{user_id}/"
    service.storage.delete(prefix)
    left = list(service.storage.list(prefix))
    if left:
        raise jobs.StorageLeftovers(f"{len(left)} object(s) still under {prefix}")
    with service.db.transaction() as tx:
        tx.execute(
            "UPDATE invoices SET user_id = NULL, plan = NULL, period_days = NULL WHERE user_id = ?",
            (user_id,),
        )
        _delete_web_rows(tx, user_id)
        for table in ("techlog", "plan_usage", "mailings", "consents", "clips", "api_tokens"):
            tx.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        tx.execute("DELETE FROM users WHERE id = ?", (user_id,))
    log.info("account %s erased", user_id)


def _delete_web_rows(tx: Tx, user_id: str) -> None:
    tx.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
    tx.execute(
        "DELETE FROM sign_in_links WHERE email = (SELECT email FROM users WHERE id = ?)",
        (user_id,),
    )


# -- routes -----------------------------------------------------------------------------------


async def api_delete_me(request: Request) -> Response:
    """``DELETE /api/v1/me``: close the account of the token (202: erasure follows)."""
    user = await require_user(request)
    service: Service = request.app.state.service
    await run_in_threadpool(
        techlog.record_request, service.db, "account_deletion", request, user["id"]
    )
    await run_in_threadpool(close_account, service, user["id"])
    return Response(status_code=202)


def find_account(service: Service, email: str) -> Row:
    from .users import get_user

    return get_user(service.db, email)


async def delete_page(request: Request) -> Response:
    """``GET /account/delete``: what deleting means, and the confirming form."""
    from .web.guards import member
    from .web.render import render_page

    found, _ = await member(request)
    return render_page(request, found, "account_delete.html", days=ERASE_WITHIN_DAYS, error=None)


async def delete_account(request: Request) -> Response:
    """``POST /account/delete`` (CSRF-checked): close the account, end this browser's session."""
    from .web.forms import read_form
    from .web.guards import member
    from .web.render import render_page
    from .web.visitors import remember

    form = await read_form(request)
    found, user = await member(request)
    if form.get("understood") != "yes":
        return render_page(
            request,
            found,
            "account_delete.html",
            status=400,
            days=ERASE_WITHIN_DAYS,
            error="account.delete_understood",
        )
    service: Service = request.app.state.service
    await run_in_threadpool(
        techlog.record_request, service.db, "account_deletion", request, user["id"]
    )
    await run_in_threadpool(close_account, service, user["id"])
    remember(found, None, found.lang)  # the session row is gone already; drop the cookie's id
    found.user = None
    return render_page(request, found, "account_deleted.html", days=ERASE_WITHIN_DAYS)


api_routes = [Route("/me", api_delete_me, methods=["DELETE"], name="delete_me")]

routes = [
    Route("/account/delete", delete_page, methods=["GET"], name="web_account_delete"),
    Route("/account/delete", delete_account, methods=["POST"], name="web_account_delete_post"),
]
