"""Robokassa: signed payment links and verified ResultURL notifications.

Request signature: ``MerchantLogin:OutSum:InvId[:Receipt]:Password1[:Shp_k=v...]`` and
ResultURL signature: ``OutSum:InvId:Password2[:Shp_k=v...]``, with the ``Shp_`` parameters
sorted by name, hashed with the algorithm set for the shop (md5 ... sha512). The Receipt
(54-FZ fiscal data) is URL-encoded JSON, signed in that encoded form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, SecretStr

from kadrio_core.errors import BadInput
from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Invoice, PaymentNotice
from kadrio_core.providers import Payments, ProviderOptions

PAYMENT_PAGE = "https://auth.robokassa.ru/Merchant/Index.aspx"


class RobokassaOptions(ProviderOptions):
    merchant_login: str = ""
    password1: SecretStr = SecretStr("")
    password2: SecretStr = SecretStr("")
    algorithm: Literal["md5", "sha1", "sha256", "sha384", "sha512"] = "md5"
    test: bool = Field(default=True, description="IsTest=1: no money moves")
    url: str = PAYMENT_PAGE
    fiscal: bool = Field(default=False, description="send the 54-FZ Receipt")
    sno: str | None = Field(default=None, description="tax system for receipts, e.g. usn_income")


def amount_text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


def shp_part(extra: Mapping[str, str]) -> list[str]:
    return [f"Shp_{key}={extra[key]}" for key in sorted(extra)]


class RobokassaPayments(Payments):
    name = "robokassa"
    description = "Robokassa payment page and ResultURL notifications (rubles)"
    Options: ClassVar[type[ProviderOptions]] = RobokassaOptions
    options: RobokassaOptions

    def _hash(self, parts: list[str]) -> str:
        return hashlib.new(self.options.algorithm, ":".join(parts).encode()).hexdigest()

    def receipt(self, invoice: Invoice) -> str | None:
        if not self.options.fiscal or not invoice.receipt:
            return None
        body: dict[str, object] = {
            "items": [
                {**item.model_dump(mode="json"), "sum": float(item.sum)} for item in invoice.receipt
            ]
        }
        if self.options.sno:
            body["sno"] = self.options.sno
        return quote(json.dumps(body, ensure_ascii=False, separators=(",", ":")), safe="")

    def signature(self, invoice: Invoice) -> str:
        o = self.options
        parts = [o.merchant_login, amount_text(invoice.amount), str(invoice.number)]
        receipt = self.receipt(invoice)
        if receipt is not None:
            parts.append(receipt)
        parts.append(o.password1.get_secret_value())
        return self._hash(parts + shp_part(invoice.extra))

    def checkout_url(self, invoice: Invoice) -> str:
        if not (self.options.merchant_login and self.options.password1.get_secret_value()):
            raise BadInput("robokassa is not configured: set merchant_login and password1")
        params = {
            "MerchantLogin": self.options.merchant_login,
            "OutSum": amount_text(invoice.amount),
            "InvId": str(invoice.number),
            "Description": invoice.description,
            "SignatureValue": self.signature(invoice),
            "Culture": invoice.language,
        }
        if invoice.email:
            params["Email"] = invoice.email
        receipt = self.receipt(invoice)
        if receipt is not None:
            params["Receipt"] = receipt  # encoded once more by urlencode, as the page expects
        if self.options.test:
            params["IsTest"] = "1"
        params.update({f"Shp_{k}": v for k, v in sorted(invoice.extra.items())})
        return f"{self.options.url}?{urlencode(params)}"

    def verify_notification(self, params: Mapping[str, str]) -> PaymentNotice:
        try:
            out_sum, number, given = params["OutSum"], params["InvId"], params["SignatureValue"]
            amount = Decimal(out_sum)
            invoice = int(number)
        except (KeyError, InvalidOperation, ValueError):
            raise BadInput("payment notification lacks OutSum, InvId or SignatureValue") from None
        extra = {k[4:]: v for k, v in params.items() if k.lower().startswith("shp_")}
        password = self.options.password2.get_secret_value()
        expected = self._hash([out_sum, number, password, *shp_part(extra)])
        if not password or not hmac.compare_digest(expected.lower(), given.strip().lower()):
            raise BadInput("payment notification has a wrong signature")
        return PaymentNotice(number=invoice, amount=amount, extra=extra, provider=self.name)

    def acknowledge(self, notice: PaymentNotice) -> str:
        return f"OK{notice.number}"

    @classmethod
    def credentials_status(cls) -> str | None:
        from kadrio_core.settings import Settings

        options = Settings().provider_options(cls.name)
        return "set" if options.get("password1") and options.get("password2") else "missing"


@hookimpl
def register_payments(register):  # type: ignore[no-untyped-def]
    register(RobokassaPayments)
