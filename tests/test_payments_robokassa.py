"""Robokassa signatures: request and ResultURL vectors, forged and tampered notifications."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from kadrio_core.errors import BadInput
from kadrio_core.models import Invoice, ReceiptItem
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

# Vectors: the documented formulas computed once by hand for these inputs.
REQUEST = {
    "md5": "a44107e2f49d77dc64570db84b024088",
    "sha256": "342dc86eedffdd9b5a417c7341b04b7c230c21c7251a2f699d6e780ef4543430",
}
RESULT = {
    "md5": "5e10fa42756edce1209b005ca33be4cb",
    "sha256": "7e732aa8c063a0ce9e9064993c7bd55537a48cbd8695093ef87e0a121e9f2230",
}


def robokassa(algorithm: str = "md5", **extra: object):  # type: ignore[no-untyped-def]
    options = {"merchant_login": "demo", "password1": "pass1", "password2": "pass2",
               "algorithm": algorithm, **extra}  # fmt: skip
    return registry("payments").create("robokassa", Settings(providers={"robokassa": options}))


def invoice(**extra: object) -> Invoice:
    fields: dict[str, object] = {
        "number": 17,
        "amount": Decimal("990"),
        "description": "Kadrio Pro, 1 month",
        "email": "ann@example.org",
        "extra": {"user": "42", "plan": "pro"},
    }
    return Invoice(**{**fields, **extra})  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_payment_url_signature_vectors(algorithm: str) -> None:
    url = robokassa(algorithm).checkout_url(invoice())
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://auth.robokassa.ru/Merchant/Index.aspx"
    )
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["SignatureValue"] == REQUEST[algorithm]
    assert q["MerchantLogin"] == "demo" and q["OutSum"] == "990.00" and q["InvId"] == "17"
    assert q["Shp_plan"] == "pro" and q["Shp_user"] == "42"
    assert q["IsTest"] == "1" and q["Culture"] == "ru" and q["Email"] == "ann@example.org"
    assert "pass1" not in url and "pass2" not in url


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_result_url_signature_vectors(algorithm: str) -> None:
    r = robokassa(algorithm)
    params = {"OutSum": "990.00", "InvId": "17", "SignatureValue": RESULT[algorithm].upper(),
              "Shp_user": "42", "Shp_plan": "pro"}  # fmt: skip
    notice = r.verify_notification(params)
    assert (notice.number, notice.amount, notice.extra) == (
        17,
        Decimal("990.00"),
        {"user": "42", "plan": "pro"},
    )
    assert r.acknowledge(notice) == "OK17"


@pytest.mark.parametrize(
    "change",
    [
        {"SignatureValue": "0" * 32},  # forged
        {"OutSum": "9.90"},  # amount changed after signing
        {"Shp_plan": "business"},  # plan changed after signing
        {"InvId": "18"},
        {"SignatureValue": ""},
    ],
)
def test_forged_or_tampered_notifications_are_refused(change: dict[str, str]) -> None:
    params = {"OutSum": "990.00", "InvId": "17", "SignatureValue": RESULT["md5"],
              "Shp_user": "42", "Shp_plan": "pro", **change}  # fmt: skip
    with pytest.raises(BadInput, match="signature"):
        robokassa().verify_notification(params)


def test_notification_without_fields_is_refused() -> None:
    with pytest.raises(BadInput, match="lacks"):
        robokassa().verify_notification({"InvId": "17"})


def test_receipt_is_signed_and_sent_when_fiscalisation_is_on() -> None:
    import hashlib

    r = robokassa(fiscal=True, sno="npd")
    inv = invoice(receipt=[ReceiptItem(name="Подписка Kadrio Pro", sum=Decimal("990"))])
    q = {k: v[0] for k, v in parse_qs(urlsplit(r.checkout_url(inv)).query).items()}
    receipt = q["Receipt"]  # still URL-encoded JSON once parse_qs has removed the outer layer
    assert '"sno":"npd"' in unquote(receipt) and "Подписка" in unquote(receipt)
    base = f"demo:990.00:17:{receipt}:pass1:Shp_plan=pro:Shp_user=42"
    assert q["SignatureValue"] == hashlib.md5(base.encode()).hexdigest()
    off = {k: v[0] for k, v in parse_qs(urlsplit(robokassa().checkout_url(inv)).query).items()}
    assert "Receipt" not in off


def test_unconfigured_shop_is_a_clear_error() -> None:
    empty = registry("payments").create("robokassa", Settings())
    with pytest.raises(BadInput, match="not configured"):
        empty.checkout_url(invoice())
