"""Emails to a user about their account: billing, account deletion, policy changes.

Each email is a row of ``mailings`` written in the same transaction as the change it reports,
unique per (user, kind, ref): a replayed payment notification or a second run of the periodic
task cannot send it twice. Delivery goes through the notifier plugin right away and is retried
by the periodic task until it succeeds; the message is built at delivery, in the user's
language. The notifier gets the address and the message, nothing else.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from kadrio_core.models import Message
from kadrio_core.plugins import registry
from kadrio_core.providers import Notifier

from .db import Cursorish, Row, utcnow
from .service import Service, new_id

log = logging.getLogger("kadrio.server")
Kind = Literal["payment_received", "ending_soon", "expired", "account_deleted", "policy_changed"]
MAX_ATTEMPTS = 10

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "payment_received": (
            "Payment received: Kadrio {plan}",
            "Thank you! We received {amount} for invoice No. {invoice}.\n"
            "Your {plan} plan is active until {until}.\n\n{link}\n",
        ),
        "ending_soon": (
            "Your Kadrio {plan} plan ends on {until}",
            "Your {plan} plan ends on {until}. To keep its limits, pay for the next period:\n"
            "{link}\n\nIf it ends, your files stay until {keep_until}; after that the Free "
            "plan's rule applies (files are kept {free_days} days after upload).\n",
        ),
        "expired": (
            "Your Kadrio {plan} plan has ended",
            "Your {plan} plan ended on {until}; the account is on the Free plan now.\n"
            "Your files stay until {keep_until}; after that, files older than {free_days} days "
            "are deleted. Pay for a plan again to keep them longer:\n{link}\n",
        ),
        "account_deleted": (
            "Your Kadrio account is deleted",
            "As you asked, your Kadrio account is closed: you can no longer sign in and its API "
            "tokens no longer work.\nAll its data (videos, transcripts, clips, previews, tokens, "
            "logs) is erased within {days} days. Payment records keep only the invoice number, "
            "amount and date, as accounting law requires.\n\nQuestions: {contact}\n",
        ),
        "policy_changed": (
            "Kadrio privacy policy update ({updated})",
            "We changed the Kadrio privacy policy (updated {updated}):\n\n{change}\n\n"
            "Read it: {link}\nQuestions or objections: {contact}. You can delete your account "
            "at any time from the dashboard.\n",
        ),
    },
    "ru": {
        "payment_received": (
            "Оплата получена: Kadrio {plan}",
            "Спасибо! Мы получили {amount} по счёту № {invoice}.\n"
            "Тариф «{plan}» действует до {until}.\n\n{link}\n",
        ),
        "ending_soon": (
            "Тариф Kadrio «{plan}» заканчивается {until}",
            "Тариф «{plan}» заканчивается {until}. Чтобы сохранить его лимиты, оплатите "
            "следующий период:\n{link}\n\nПосле окончания файлы хранятся до {keep_until}, затем "
            "действует правило бесплатного тарифа (файлы хранятся {free_days} дней после "
            "загрузки).\n",
        ),
        "expired": (
            "Тариф Kadrio «{plan}» закончился",
            "Тариф «{plan}» закончился {until}; аккаунт переведён на бесплатный тариф.\n"
            "Файлы хранятся до {keep_until}, затем файлы старше {free_days} дней удаляются. "
            "Чтобы хранить их дольше, оплатите тариф снова:\n{link}\n",
        ),
        "account_deleted": (
            "Ваш аккаунт Kadrio удалён",
            "По вашему запросу аккаунт Kadrio закрыт: войти в него больше нельзя, его API-токены "
            "не действуют.\nВсе его данные (видео, расшифровки, клипы, превью, токены, журналы) "
            "будут стёрты в течение {days} дней. В платёжных записях остаются только номер "
            "счёта, сумма и дата — этого требует закон о бухгалтерском учёте.\n\n"
            "Вопросы: {contact}\n",
        ),
        "policy_changed": (
            "Изменения политики конфиденциальности Kadrio ({updated})",
            "Мы изменили политику конфиденциальности Kadrio (редакция от {updated}):\n\n"
            "{change}\n\nТекст политики: {link}\nВопросы и возражения: {contact}. Удалить "
            "аккаунт можно в любой момент в личном кабинете.\n",
        ),
    },
}


def format_rubles(amount: Decimal, language: str) -> str:
    from .web.i18n import Translator

    digits = 0 if amount == amount.to_integral_value() else 2
    text = Translator(language).number(amount, digits)
    return f"{text}\u00a0₽" if language == "ru" else f"{text} RUB"


def enqueue(
    tx: Cursorish,
    user_id: str,
    kind: Kind,
    ref: str,
    params: dict[str, Any],
    now: datetime,
) -> bool:
    """Record an email to send (inside the caller's transaction); False if already recorded."""
    return bool(
        tx.execute(
            "INSERT INTO mailings (id, user_id, kind, ref, params, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, kind, ref) DO NOTHING",
            (new_id(), user_id, kind, ref, json.dumps(params, default=str), now),
        )
    )


def message_for(service: Service, mailing: Row, user: Row) -> Message:
    language = user["language"] if user["language"] in TEXTS else "en"
    subject, text = TEXTS[language][mailing["kind"]]
    values = _values(service, json.loads(mailing["params"]), language)
    return Message(
        to=user["email"],
        subject=subject.format(**values),
        text=text.format(**values),
        headers={"X-Kadrio-Mailing": mailing["kind"]},
    )


def _values(service: Service, params: dict[str, Any], language: str) -> dict[str, str]:
    from .plans import load_plans
    from .web.i18n import Translator

    plans = load_plans(service.settings)
    translator = Translator(language, service.settings.service.web.timezone)
    base = service.settings.service.public_url.rstrip("/")
    operator = service.settings.operator
    values: dict[str, str] = {
        "link": base + params.get("path", "/dashboard"),
        "contact": operator.email or base,
        "free_days": str(plans.free.retention.days),
    }
    for key, value in params.items():
        if key == "plan":
            values[key] = plans[value].label(language)
        elif key in ("until", "keep_until"):
            values[key] = translator.date(datetime.fromisoformat(value))
        elif key == "updated":
            values[key] = translator.iso_date(value)
        elif key == "amount":
            values[key] = format_rubles(Decimal(value), language)
        elif key != "path":
            values[key] = str(value)
    return values


def notifier(service: Service) -> Notifier:
    provider = registry("notifier").create(service.settings.notifier, service.settings)
    assert isinstance(provider, Notifier)
    return provider


def deliver(service: Service, only_user: str | None = None) -> int:
    """Send the recorded emails not sent yet (each claimed first: one sender per email)."""
    sql = "SELECT * FROM mailings WHERE sent_at IS NULL AND attempts < ?"
    params: tuple[Any, ...] = (MAX_ATTEMPTS,)
    if only_user is not None:
        sql += " AND user_id = ?"
        params += (only_user,)
    sent = 0
    sender: Notifier | None = None
    for mailing in service.db.all(sql + " ORDER BY created_at", params):
        now = utcnow()
        claimed = service.db.execute(
            "UPDATE mailings SET sent_at = ?, attempts = attempts + 1 "
            "WHERE id = ? AND sent_at IS NULL",
            (now, mailing["id"]),
        )
        if not claimed:
            continue
        user = service.db.one("SELECT * FROM users WHERE id = ?", (mailing["user_id"],))
        if user is None:
            continue
        if user["deactivated_at"] is not None and mailing["kind"] != "account_deleted":
            continue  # a closed account gets no more mail (the row stays marked as handled)
        try:
            sender = sender or notifier(service)
            sender.send(message_for(service, mailing, user))
            sent += 1
        except Exception as exc:
            log.warning("email %s (%s) not sent: %s", mailing["id"], mailing["kind"], exc)
            service.db.execute(
                "UPDATE mailings SET sent_at = NULL, last_error = ? WHERE id = ?",
                (f"{type(exc).__name__}: {exc}"[:500], mailing["id"]),
            )
    return sent
