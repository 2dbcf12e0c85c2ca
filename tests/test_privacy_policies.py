"""The policy documents and consents: the privacy policy, the Consent to Personal Data
Processing (152-FZ) and the biometric consent exist in Russian and English with an "updated"
date, carry the operator's details from settings, agree with the plans file, and the versions
recorded with each consent are the documents' dates. A material change is emailed to every
user, once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kadrio_core.settings import Settings
from kadrio_server import accounts, privacy
from kadrio_server.consent import BIOMETRIC
from kadrio_server.plans import load_plans
from kadrio_server.service import Service
from kadrio_server.web.policies import render, source

from .billing_helpers import T0, body, mails_of_kind, new_service, user_on
from .conftest import run_kadrio

DOCUMENTS = ("privacy", "personal-data", "biometric")
OPERATOR = {
    "name": "Igor Popov",
    "status": "self-employed (422-FZ)",
    "tax_id": "771476601234",
    "email": "igor.popov.me@gmail.com",
    "website": "kadrio.ai",
}


@pytest.fixture
def service(tmp_path: Path) -> Service:
    service = new_service(tmp_path / "data")
    yield service
    service.close()


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_in_both_languages_with_the_operator_from_settings(name: str) -> None:
    settings = Settings(operator=OPERATOR)
    dates = set()
    for lang in ("ru", "en"):
        doc = render(name, lang, settings)
        assert doc.title and re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc.updated)
        dates.add(doc.updated)
        html = str(doc.html)
        for value in ("Igor Popov", "771476601234", "igor.popov.me@gmail.com"):
            assert value in html, (name, lang, value)
        assert "{operator" not in html and "{website}" not in html
    assert len(dates) == 1  # both languages are the same version
    # nothing about the operator is written into the documents themselves
    for lang in ("ru", "en"):
        assert "771476601234" not in source(name, lang)
        assert "Popov" not in source(name, lang)


def test_operator_values_are_escaped() -> None:
    doc = render("privacy", "en", Settings(operator={"name": "<script>x</script>"}))
    assert "<script>" not in str(doc.html) and "&lt;script&gt;" in str(doc.html)


def test_consent_versions_are_the_documents_dates() -> None:
    assert privacy.consent_version("biometric") == render("biometric", "ru", Settings()).updated
    # the upload path records BIOMETRIC.version: it must name the current biometric text
    assert BIOMETRIC.version == privacy.consent_version("biometric")
    assert (
        privacy.consent_version("personal_data")
        == render("personal-data", "en", Settings()).updated
    )


@pytest.mark.parametrize("name", ["privacy", "personal-data"])
def test_retention_in_the_documents_matches_the_plans_file(name: str) -> None:
    plans = load_plans(Settings())
    days = {p.name: p.retention.days for p in plans.ordered()}
    en = source(name, "en")
    assert re.search(rf"Free — {days['free']} days", en)
    for plan in ("starter", "pro", "business"):
        assert re.search(rf"{plan.title()} — (?:until the )?subscription.*?{days[plan]} days", en)
    ru = source(name, "ru")
    assert f"{days['free']} дней" in ru
    for plan in ("starter", "pro", "business"):
        assert f"{days[plan]} дней" in ru
    assert "30 дней" in ru and "30 days" in en  # technical logs, account erasure


def test_third_parties_are_named_with_their_slice() -> None:
    text = source("personal-data", "en").split("## Who receives data")[1].split("## ")[0]
    for party, slice_ in (
        ("AssemblyAI", "only the audio track"),
        ("Anthropic", "only the transcript text"),
        ("Resend", "the address and the message"),
        ("Robokassa", "invoice number, amount, email address"),
        ("Yandex", "only after consent in the cookie banner"),
    ):
        line = next(line for line in text.splitlines() if party in line and line.startswith("- "))
        assert slice_ in line, party


def test_personal_data_consent_is_recorded_once_per_version(service: Service) -> None:
    user = user_on(service)
    assert privacy.needs_personal_data_consent(service.db, user["id"])
    assert privacy.accept_personal_data(service.db, user["id"], now=T0)
    assert not privacy.accept_personal_data(service.db, user["id"])
    assert not privacy.needs_personal_data_consent(service.db, user["id"])
    rows = service.db.all(
        "SELECT kind, version, given_at FROM consents WHERE user_id = ?", (user["id"],)
    )
    assert rows == [{"kind": "personal_data", "version": "2026-05-06", "given_at": T0}]
    # a new version of the text asks again
    service.db.execute(
        "UPDATE consents SET version = '2025-01-01' WHERE user_id = ?", (user["id"],)
    )
    assert privacy.needs_personal_data_consent(service.db, user["id"])


def test_policy_change_is_emailed_to_every_user_once(service: Service) -> None:
    ru = user_on(service, language="ru")
    en = user_on(service, language="en")
    gone = user_on(service)
    accounts.close_account(service, gone["id"])
    recorded, sent = privacy.notify_policy_change(
        service, "We now use Selectel CDN.", change_ru="Мы подключили CDN Selectel."
    )
    assert (recorded, sent) == (2, 2)
    mails = {m["To"]: m for m in mails_of_kind(service, "policy_changed")}
    assert set(mails) == {ru["email"], en["email"]}
    assert "Мы подключили CDN Selectel." in body(mails[ru["email"]])
    assert "6 мая 2026" in mails[ru["email"]]["Subject"]
    assert "We now use Selectel CDN." in body(mails[en["email"]])
    assert "/privacy" in body(mails[en["email"]])
    # the same change again sends nothing new; a new change goes out
    assert privacy.notify_policy_change(service, "We now use Selectel CDN.") == (0, 0)
    assert privacy.notify_policy_change(service, "New purpose: support chat.")[0] == 2


def test_policy_notify_command(service: Service) -> None:
    user = user_on(service)
    env = {"KADRIO_DATA_DIR": str(service.settings.data_dir)}
    done = run_kadrio("policy", "notify", "--change", "Added a new processor.", env=env)
    assert done.code == 0, done.stderr
    assert "recorded for 1 user(s); 1 email(s) sent now" in done.stdout
    (mail,) = mails_of_kind(service, "policy_changed")
    assert mail["To"] == user["email"] and "Added a new processor." in body(mail)
    empty = run_kadrio("policy", "notify", "--change", "  ", env=env)
    assert empty.code == 2 and "describe the change" in empty.stderr
