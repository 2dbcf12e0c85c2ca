"""Paying for a plan through Robokassa, end to end through the app: checkout builds the signed
payment URL; ResultURL (signed with Password2, amount checked against the invoice) starts or
extends the plan exactly once; a replayed notification changes nothing; a forged one, a wrong
amount or an unknown invoice get 400 and change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from kadrio_server import billing
from kadrio_server.db import utcnow
from kadrio_server.plans import load_plans

from .billing_helpers import (  # noqa: F401  (own_pg: a fixture)
    ROBOKASSA,
    T0,
    body,
    mails_of_kind,
    own_pg,
    reload_user,
    settings_for,
    signed_result,
    user_on,
)
from .server.conftest import Api, auth, make_api  # noqa: F401  (make_api: a fixture)

DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, make_api: Callable[..., Api], tmp_path: Path) -> Api:  # noqa: F811
    url = request.getfixturevalue("own_pg") if request.param == "postgresql" else None
    return make_api(settings_for(tmp_path / "data", url))


def checkout(api: Api, token: str, plan: str) -> dict[str, Any]:
    response = api.client.post("/api/v1/billing/checkout", json={"plan": plan}, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def notify(api: Api, params: dict[str, str], method: str = "POST") -> Any:
    if method == "GET":
        return api.client.get("/billing/robokassa/result", params=params)
    return api.client.post("/billing/robokassa/result", data=params)


def snapshot(api: Api, user_id: str, number: int) -> tuple[Any, ...]:
    user = reload_user(api.service, user_id)
    invoice = api.service.db.one("SELECT * FROM invoices WHERE number = ?", (number,))
    assert invoice is not None
    return (
        user["plan"],
        user["plan_until"],
        user["keep_until"],
        invoice["status"],
        invoice["paid_at"],
    )


def test_checkout_then_result_url_starts_the_plan_once(shop: Api) -> None:
    api = shop
    user, token = api.user(language="ru")
    bought = checkout(api, token, "pro")
    number = bought["invoice"]
    assert (bought["amount"], bought["currency"]) == ("2490.00", "RUB")

    # the payment page link: signed with Password1, carrying the invoice, amount and email only
    url = bought["url"]
    assert url.startswith("https://auth.robokassa.ru/Merchant/Index.aspx?")
    q = query(url)
    assert set(q) == {
        "MerchantLogin",
        "OutSum",
        "InvId",
        "Description",
        "SignatureValue",
        "Culture",
        "Email",
        "IsTest",
    }
    assert (q["MerchantLogin"], q["OutSum"], q["InvId"]) == ("kadrio-test", "2490.00", str(number))
    assert (q["Email"], q["Culture"], q["IsTest"]) == (user["email"], "ru", "1")
    assert q["Description"] == "Kadrio, тариф «Про», 30 дней"
    expected = hashlib.md5(f"kadrio-test:2490.00:{number}:p1-secret".encode()).hexdigest()
    assert q["SignatureValue"] == expected
    assert "p1-secret" not in url and "p2-secret" not in url
    # nothing is granted by a checkout
    assert snapshot(api, user["id"], number) == ("free", None, None, "pending", None)

    before = utcnow()
    answer = notify(api, signed_result(number, "2490.00"))
    after = utcnow()
    assert answer.status_code == 200 and answer.text == f"OK{number}"
    plan, until, keep, status, paid_at = snapshot(api, user["id"], number)
    assert (plan, keep, status) == ("pro", None, "paid")
    assert before + 30 * DAY <= until <= after + 30 * DAY
    assert before <= paid_at <= after
    (mail,) = mails_of_kind(api.service, "payment_received")
    assert mail["To"] == user["email"] and mail["Subject"] == "Оплата получена: Kadrio Про"
    assert f"№ {number}" in body(mail) and "2\u00a0490\u00a0₽" in body(mail)

    # Robokassa repeats the notification until it reads OK: the same answer, nothing more
    state = snapshot(api, user["id"], number)
    for method in ("POST", "GET"):
        again = notify(api, signed_result(number, "2490.00"), method)
        assert again.status_code == 200 and again.text == f"OK{number}"
    assert snapshot(api, user["id"], number) == state
    assert len(mails_of_kind(api.service, "payment_received")) == 1

    # the plan limits follow at once
    me = api.get(token, "/api/v1/billing").json()
    assert me["plan"] == "pro" and me["minutes_per_month"] == 1200
    assert [i["status"] for i in me["invoices"]] == ["paid"]


def test_forged_wrong_amount_and_unknown_invoice_change_nothing(shop: Api) -> None:
    api = shop
    user, token = api.user()
    number = checkout(api, token, "starter")["invoice"]
    state = snapshot(api, user["id"], number)

    forged = signed_result(number, "990.00", password2="guessed")
    wrong_amount = signed_result(number, "1.00")  # signed correctly, for a different sum
    unsigned = {"OutSum": "990.00", "InvId": str(number)}
    sha = signed_result(number, "990.00", algorithm="sha256")  # the shop signs with md5
    unknown = signed_result(number + 1000, "990.00")
    for params in (forged, wrong_amount, unsigned, sha, unknown):
        response = notify(api, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "payment_refused"
        assert snapshot(api, user["id"], number) == state
    assert mails_of_kind(api.service, "payment_received") == []

    assert notify(api, signed_result(number, "990.00")).text == f"OK{number}"
    assert snapshot(api, user["id"], number)[0] == "starter"
    # a payment notification for another provider's path is not ours
    assert api.client.post("/billing/yookassa/result", data={}).status_code == 404


def test_concurrent_replays_extend_once(shop: Api) -> None:
    api = shop
    user, token = api.user()
    number = checkout(api, token, "business")["invoice"]
    params = signed_result(number, "7990.00")
    results: list[tuple[str, bool]] = []

    def call() -> None:
        results.append(billing.confirm(api.service, params, T0))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [answer for answer, _ in results] == [f"OK{number}"] * 6
    assert sum(applied for _, applied in results) == 1
    assert reload_user(api.service, user["id"])["plan_until"] == T0 + 30 * DAY


def test_paying_again_extends_and_upgrading_converts_the_days_left(tmp_path: Path) -> None:
    from .billing_helpers import new_service

    service = new_service(tmp_path / "data")
    user = user_on(service, "free")

    def pay(plan: str, at: Any) -> None:
        row, _ = billing.checkout(service, reload_user(service, user["id"]), plan, at)
        amount = billing.rubles(row["amount_kopecks"])
        answer, applied = billing.confirm(service, signed_result(row["number"], str(amount)), at)
        assert applied and answer == f"OK{row['number']}"

    pay("starter", T0)
    assert reload_user(service, user["id"])["plan_until"] == T0 + 30 * DAY
    pay("starter", T0 + 10 * DAY)  # extends from the end, not from today
    assert reload_user(service, user["id"])["plan_until"] == T0 + 60 * DAY

    # 50 days of Starter left at 990 are worth 50 * 990 / 2490 days of Pro
    pay("pro", T0 + 10 * DAY)
    upgraded = reload_user(service, user["id"])
    credit = timedelta(days=50) * float(Decimal(990) / Decimal(2490))
    assert upgraded["plan"] == "pro"
    assert abs(upgraded["plan_until"] - (T0 + 40 * DAY + credit)) < timedelta(seconds=1)
    assert upgraded["keep_until"] == T0 + 10 * DAY + 14 * DAY  # Starter's grace is kept

    # a cheaper plan cannot be bought while a dearer one runs
    from kadrio_server.errors import ApiError

    with pytest.raises(ApiError) as refused:
        billing.checkout(service, upgraded, "starter", T0 + 11 * DAY)
    assert refused.value.status == 409
    # after it ends (and its grace is kept), it can
    ended = upgraded["plan_until"] + DAY
    pay("starter", ended)
    after = reload_user(service, user["id"])
    assert after["plan"] == "starter" and after["plan_until"] == ended + 30 * DAY
    assert after["keep_until"] == upgraded["plan_until"] + 30 * DAY  # Pro's grace
    service.close()


def test_checkout_refusals(shop: Api) -> None:
    api = shop
    _, token = api.user()
    for payload, code in (
        ({"plan": "free"}, "not_billable"),
        ({"plan": "gold"}, "bad_request"),
        ({}, "bad_request"),
    ):
        response = api.client.post("/api/v1/billing/checkout", json=payload, headers=auth(token))
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == code
    assert api.client.post("/api/v1/billing/checkout", json={"plan": "pro"}).status_code == 401


def test_receipt_when_fiscalisation_is_on(make_api: Callable[..., Api], tmp_path: Path) -> None:  # noqa: F811
    options = ROBOKASSA | {"fiscal": True, "sno": "usn_income", "algorithm": "sha256"}
    api = make_api(settings_for(tmp_path / "data", providers={"robokassa": options}))
    user, token = api.user()
    bought = checkout(api, token, "starter")
    q = query(bought["url"])
    receipt = json.loads(unquote(q["Receipt"]))
    assert receipt == {
        "sno": "usn_income",
        "items": [
            {
                "name": "Kadrio Starter plan, 30 days",
                "quantity": 1,
                "sum": 990.0,
                "tax": "none",
                "payment_method": "full_payment",
                "payment_object": "service",
            }
        ],
    }
    signed = f"kadrio-test:990.00:{bought['invoice']}:{q['Receipt']}:p1-secret"
    assert q["SignatureValue"] == hashlib.sha256(signed.encode()).hexdigest()
    # the shop signs notifications with sha256 too: an md5 one is refused
    number = bought["invoice"]
    assert notify(api, signed_result(number, "990.00")).status_code == 400
    ok = notify(api, signed_result(number, "990.00", algorithm="sha256"))
    assert ok.status_code == 200 and ok.text == f"OK{number}"
    assert reload_user(api.service, user["id"])["plan"] == "starter"


def test_prices_are_the_plans_file_prices() -> None:
    from kadrio_core.settings import Settings

    plans = load_plans(Settings())
    assert [(p.name, p.price_rub) for p in plans.ordered()] == [
        ("free", 0),
        ("starter", 990),
        ("pro", 2490),
        ("business", 7990),
    ]
