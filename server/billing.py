"""Paying for a plan: invoices, the payment provider's checkout link and its notifications.

- ``checkout`` records a pending invoice and returns the provider's signed payment URL. The
  provider gets the amount, the invoice (number, description, 54-FZ receipt line) and the
  payer's email, nothing else.
- ``confirm`` handles the provider's server-to-server notification (Robokassa's ResultURL): the
  signature is checked by the provider plugin (Password2), the amount against the invoice; the
  invoice turns ``paid`` with a conditional UPDATE in the same transaction that extends the
  subscription and records the "payment received" email, so a replayed notification changes
  nothing and is answered ``OK{InvId}`` again. A forged or wrong-amount notification is refused
  (400) and changes nothing.
- The success and fail pages the payer's browser returns to only display; a subscription
  starts or extends on the notification alone.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kadrio_core.errors import BadInput
from kadrio_core.models import Invoice, PaymentNotice, ReceiptItem
from kadrio_core.plugins import registry
from kadrio_core.providers import Payments

from . import mailings, techlog
from .auth import require_user
from .db import Row, Tx, utcnow
from .errors import ApiError
from .plans import Plan, Plans, effective_plan, load_plans
from .service import Service

log = logging.getLogger("kadrio.server")
CURRENCY = "RUB"
NOTICE_BODY_MAX = 16 * 1024


class PaymentRefused(BadInput):
    """A notification that must change nothing: forged, unknown invoice or wrong amount."""


def payments(service: Service) -> Payments:
    provider = registry("payments").create(service.settings.billing.payments, service.settings)
    assert isinstance(provider, Payments)
    return provider


def kopecks(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def rubles(amount_kopecks: int) -> Decimal:
    return (Decimal(amount_kopecks) / 100).quantize(Decimal("0.01"))


def description(plan: Plan, language: str) -> str:
    if language == "ru":
        return f"Kadrio, тариф «{plan.label('ru')}», {plan.period_days} дней"
    return f"Kadrio {plan.label('en')} plan, {plan.period_days} days"


# -- checkout ---------------------------------------------------------------------------------


def checkout(service: Service, user: Row, plan_name: str, now: datetime) -> tuple[Row, str]:
    """A pending invoice for one period of ``plan_name`` and the URL to pay it."""
    plans = load_plans(service.settings)
    plan = plans[plan_name]
    if not plan.paid:
        raise ApiError(400, "not_billable", f"the {plan.name} plan costs nothing")
    if user.get("deactivated_at") is not None:
        raise ApiError(403, "account_closed", "this account is being deleted")
    _check_switch(plans, user, plan, now)
    language = user["language"] if user["language"] in ("ru", "en") else "ru"
    row = _new_invoice(service, user["id"], plan, now)
    text = description(plan, language)
    invoice = Invoice(
        number=row["number"],
        amount=plan.price_rub,
        description=text,
        email=user["email"],
        language=language,
        receipt=[ReceiptItem(name=text, sum=plan.price_rub)],
    )
    return row, payments(service).checkout_url(invoice)


def _check_switch(plans: Plans, user: Row, plan: Plan, now: datetime) -> None:
    current = plans[user["plan"]]
    until = user.get("plan_until")
    if not current.paid or (current.name == plan.name and until is not None):
        return
    if until is None:
        raise ApiError(
            409, "plan_without_end", f"the {current.name} plan of this account has no end date"
        )
    if until > now and current.price_rub > plan.price_rub:
        raise ApiError(
            409,
            "downgrade_while_active",
            f"the {current.name} plan is paid until {until:%Y-%m-%d}; pay for it again to "
            "extend it, or choose the smaller plan after it ends",
        )


def _new_invoice(service: Service, user_id: str, plan: Plan, now: datetime) -> Row:
    """Insert with the next number; two checkouts at once retry on the unique key."""
    for _ in range(20):
        try:
            with service.db.transaction() as tx:
                row = tx.one("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM invoices")
                number = int(row["n"]) if row else 1
                tx.execute(
                    "INSERT INTO invoices (number, user_id, plan, period_days, amount_kopecks, "
                    "currency, provider, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (
                        number,
                        user_id,
                        plan.name,
                        plan.period_days,
                        kopecks(plan.price_rub),
                        CURRENCY,
                        service.settings.billing.payments,
                        now,
                    ),
                )
        except Exception as exc:
            if _duplicate_key(exc):
                continue
            raise
        invoice = service.db.one("SELECT * FROM invoices WHERE number = ?", (number,))
        assert invoice is not None
        return invoice
    raise RuntimeError("could not allocate an invoice number")


def _duplicate_key(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    try:
        import psycopg
    except ModuleNotFoundError:
        return False
    return isinstance(exc, psycopg.errors.UniqueViolation)


# -- notifications ----------------------------------------------------------------------------


def confirm(service: Service, params: dict[str, str], now: datetime) -> tuple[str, bool]:
    """Verify a payment notification and apply it once; (answer for the provider, applied now).

    Raises PaymentRefused (nothing changed) for a bad signature, unknown invoice or amount.
    """
    provider = payments(service)
    try:
        notice = provider.verify_notification(params)
    except BadInput as exc:
        raise PaymentRefused(str(exc)) from None
    applied = False
    user_id: str | None = None
    with service.db.transaction() as tx:
        invoice = tx.one("SELECT * FROM invoices WHERE number = ?", (notice.number,))
        if invoice is None or invoice["provider"] != provider.name:
            raise PaymentRefused(f"unknown invoice {notice.number}")
        if kopecks(notice.amount) != invoice["amount_kopecks"]:
            raise PaymentRefused(
                f"invoice {notice.number} is for {rubles(invoice['amount_kopecks'])}, "
                f"not {notice.amount}"
            )
        if tx.execute(
            "UPDATE invoices SET status = 'paid', paid_at = ? WHERE number = ? AND status = ?",
            (now, notice.number, "pending"),
        ):
            applied = True
            user_id = invoice["user_id"]
            if user_id is not None:
                _extend(tx, load_plans(service.settings), invoice, notice, now)
    if applied:
        log.info("invoice %s paid", notice.number)
        if user_id is not None:
            _send_soon(service, user_id)
    else:
        log.info("invoice %s: repeated notification, nothing to do", notice.number)
    return provider.acknowledge(notice), applied


def _extend(tx: Tx, plans: Plans, invoice: Row, notice: PaymentNotice, now: datetime) -> None:
    """Start or extend the paid period (inside the transaction that marked the invoice paid)."""
    user = tx.one("SELECT * FROM users WHERE id = ?", (invoice["user_id"],))
    if user is None or user["deactivated_at"] is not None:
        return
    plan = plans[invoice["plan"]]
    period = timedelta(days=invoice["period_days"] or plan.period_days)
    plan_until, keep_until = extended_period(plans, user, plan, period, now)
    tx.execute(
        "UPDATE users SET plan = ?, plan_until = ?, keep_until = ? WHERE id = ?",
        (plan.name, plan_until, keep_until, user["id"]),
    )
    mailings.enqueue(
        tx,
        user["id"],
        "payment_received",
        str(invoice["number"]),
        {
            "plan": plan.name,
            "amount": str(notice.amount),
            "invoice": invoice["number"],
            "until": plan_until.isoformat(),
        },
        now,
    )


def extended_period(
    plans: Plans, user: Row, plan: Plan, period: timedelta, now: datetime
) -> tuple[datetime, datetime | None]:
    """(new end of the paid period, new keep_until) after paying one ``period`` of ``plan``.

    Same plan, still running: the period is added to its end. Another paid plan still running
    (an upgrade): the new plan starts now, the days left of the old one are converted at the
    ratio of the prices, and the old plan's grace is kept as ``keep_until``. Otherwise the
    period starts now; an ended plan's grace is kept as ``keep_until``.
    """
    current = plans[user["plan"]]
    until: datetime | None = user["plan_until"]
    keep: datetime | None = user["keep_until"]

    def keep_at_least(moment: datetime) -> datetime:
        return moment if keep is None else max(keep, moment)

    if current.paid and until is not None and until > now:
        if current.name == plan.name:
            return until + period, keep
        credit = (until - now) * float(current.price_rub / plan.price_rub)
        grace = now + timedelta(days=current.retention.days)
        return now + period + credit, keep_at_least(grace)
    if current.paid and until is not None:
        keep = keep_at_least(until + timedelta(days=current.retention.days))
    return now + period, keep


def _send_soon(service: Service, user_id: str) -> None:
    try:
        mailings.deliver(service, only_user=user_id)
    except Exception:
        log.exception("billing email not sent now; the periodic task retries")


# -- reading ----------------------------------------------------------------------------------


def account_billing(service: Service, user: Row, now: datetime) -> dict[str, Any]:
    from .plans import used_seconds

    plans = load_plans(service.settings)
    plan = effective_plan(plans, user, now)
    invoices = service.db.all(
        "SELECT number, plan, amount_kopecks, currency, status, created_at, paid_at "
        "FROM invoices WHERE user_id = ? ORDER BY number DESC LIMIT 100",
        (user["id"],),
    )
    return {
        "plan": plan.name,
        "plan_until": user["plan_until"].isoformat() if user["plan_until"] else None,
        "keep_until": user["keep_until"].isoformat() if user["keep_until"] else None,
        "minutes_used": round(used_seconds(service.db, user["id"], now) / 60, 1),
        "minutes_per_month": plan.minutes_per_month,
        "invoices": [
            {
                "number": i["number"],
                "plan": i["plan"],
                "amount": str(rubles(i["amount_kopecks"])),
                "currency": i["currency"],
                "status": i["status"],
                "created_at": i["created_at"].isoformat(),
                "paid_at": i["paid_at"].isoformat() if i["paid_at"] else None,
            }
            for i in invoices
        ],
    }


# -- routes -----------------------------------------------------------------------------------


def _service(request: Request) -> Service:
    return request.app.state.service


async def api_checkout(request: Request) -> Response:
    """``POST /api/v1/billing/checkout`` ``{"plan": "pro"}`` -> 201 ``{invoice, amount, url}``."""
    user = await require_user(request)
    try:
        body = await request.json()
        plan_name = str(body["plan"])
    except Exception:
        raise ApiError(400, "bad_request", 'send JSON {"plan": "<name>"}') from None
    service = _service(request)
    invoice, url = await run_in_threadpool(_checkout_logged, service, request, user, plan_name)
    return JSONResponse(
        {
            "invoice": invoice["number"],
            "amount": str(rubles(invoice["amount_kopecks"])),
            "currency": invoice["currency"],
            "url": url,
        },
        201,
    )


def _checkout_logged(
    service: Service, request: Request, user: Row, plan_name: str
) -> tuple[Row, str]:
    try:
        row, url = checkout(service, user, plan_name, utcnow())
    except BadInput as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    techlog.record_request(service.db, "payment", request, user["id"])
    return row, url


async def api_billing(request: Request) -> Response:
    """``GET /api/v1/billing``: the plan in force, its end, minutes used, invoices."""
    user = await require_user(request)
    data = await run_in_threadpool(account_billing, _service(request), user, utcnow())
    return JSONResponse(data)


async def result(request: Request) -> Response:
    """The provider's notification (Robokassa ResultURL), by POST form or GET query."""
    service = _service(request)
    if request.path_params["provider"] != service.settings.billing.payments:
        raise ApiError(404, "not_found", "no such payments provider")
    params = dict(request.query_params)
    if request.method == "POST":
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > NOTICE_BODY_MAX:
            raise ApiError(413, "too_large", "notification body too large")
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    try:
        answer, applied = await run_in_threadpool(confirm, service, params, utcnow())
    except PaymentRefused as exc:
        log.warning("payment notification refused: %s", exc)
        raise ApiError(400, "payment_refused", str(exc)) from None
    if applied:
        user = await run_in_threadpool(_invoice_user, service, params.get("InvId", ""))
        await run_in_threadpool(techlog.record_request, service.db, "payment", request, user)
    return PlainTextResponse(answer)


def _invoice_user(service: Service, number: str) -> str | None:
    row = service.db.one(
        "SELECT user_id FROM invoices WHERE number = ?", (int(number) if number.isdigit() else 0,)
    )
    return row["user_id"] if row else None


# -- pages ------------------------------------------------------------------------------------


async def plan_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    """``/account/plan``: the plan in force, minutes used, plans to pay for, invoices."""
    from .plans import used_seconds
    from .web.guards import member
    from .web.render import render_page

    found, user = await member(request)
    service = _service(request)
    now = utcnow()
    plans = load_plans(service.settings)

    def read() -> tuple[float, list[Row]]:
        used = used_seconds(service.db, user["id"], now) / 60
        invoices = service.db.all(
            "SELECT number, amount_kopecks, status, created_at FROM invoices "
            "WHERE user_id = ? ORDER BY number DESC LIMIT 50",
            (user["id"],),
        )
        return used, invoices

    used, invoices = await run_in_threadpool(read)
    current = effective_plan(plans, user, now)
    return render_page(
        request,
        found,
        "billing.html",
        status=status,
        current=current,
        plans=plans.ordered(),
        plan_until=user["plan_until"] if current.paid else None,
        keep_until=user["keep_until"] if user["keep_until"] and user["keep_until"] > now else None,
        used_minutes=used,
        invoices=invoices,
        error=error,
    )


async def web_checkout(request: Request) -> Response:
    """The plan page's "Pay": a pending invoice, then off to the payment page (303)."""
    from starlette.responses import RedirectResponse

    from .web.forms import read_form
    from .web.guards import member

    form = await read_form(request)
    _, user = await member(request)
    service = _service(request)
    try:
        _, url = await run_in_threadpool(
            _checkout_logged, service, request, user, form.get("plan", "")
        )
    except ApiError as exc:
        return await plan_page(request, error=exc.message, status=exc.status)
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def payment_success(request: Request) -> Response:
    return await payment_return(request, "success")


async def payment_fail(request: Request) -> Response:
    return await payment_return(request, "fail")


async def payment_return(request: Request, outcome: str) -> Response:
    """SuccessURL and FailURL: the payer's browser comes back here. Display only: nothing is
    granted or changed (that happens on the provider's notification alone)."""
    from .web.render import page
    from .web.visitors import visitor

    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    number = params.get("InvId", "")
    number = number if number.isdigit() and len(number) < 12 else None
    found = await visitor(request)
    invoice = None
    if number and found.user is not None:
        invoice = await run_in_threadpool(
            _service(request).db.one,
            "SELECT number, status FROM invoices WHERE number = ? AND user_id = ?",
            (int(number), found.user["id"]),
        )
    return await page(
        request, "billing_return.html", outcome=outcome, number=number, invoice=invoice
    )


def openapi_paths(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` of the OpenAPI document with the billing and account-deletion operations."""
    from .openapi import _errors

    def ok(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {}}}

    plan = {"type": "object", "required": ["plan"], "properties": {"plan": {"type": "string"}}}
    paths["/billing/checkout"] = {
        "post": {
            "operationId": "billing_checkout",
            "summary": "An invoice for one period of a plan and the URL of its payment page",
            "requestBody": {"required": True, "content": {"application/json": {"schema": plan}}},
            "responses": {
                "201": ok("{invoice, amount, currency, url}; the plan starts once it is paid"),
                **_errors(400, 401, 409),
            },
        }
    }
    paths["/billing"] = {
        "get": {
            "operationId": "billing",
            "summary": "The plan in force, its end, minutes used this month, invoices",
            "responses": {"200": ok("plan, plan_until, minutes, invoices"), **_errors(401)},
        }
    }
    paths.setdefault("/me", {})["delete"] = {
        "operationId": "delete_me",
        "summary": "Close the account now; all its data is erased within 30 days",
        "responses": {"202": {"description": "closed; erasure follows"}, **_errors(401)},
    }
    return paths


api_routes = [
    Route("/billing/checkout", api_checkout, methods=["POST"], name="billing_checkout"),
    Route("/billing", api_billing, methods=["GET"], name="billing"),
]

routes = [
    Route("/billing/{provider}/result", result, methods=["GET", "POST"], name="billing_result"),
    Route("/billing/success", payment_success, methods=["GET", "POST"], name="billing_success"),
    Route("/billing/fail", payment_fail, methods=["GET", "POST"], name="billing_fail"),
    Route("/account/plan", plan_page, methods=["GET"], name="web_plan"),
    Route("/account/plan/checkout", web_checkout, methods=["POST"], name="web_plan_checkout"),
]
