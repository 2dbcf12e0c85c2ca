"""Each provider sees only its slice, checked on what reaches the loopback fakes of the real
services while a real job runs through the service: AssemblyAI gets audio only, Claude the
transcript text only, Resend the address and the message; Robokassa the amount, the invoice and
the email (nothing else leaves in the payment link)."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .billing_helpers import settings_for
from .conftest import FIXTURES
from .fakes.providers import FakeAssemblyAI, FakeClaude, FakeResend
from .server.conftest import Api, auth, make_api  # noqa: F401  (make_api: a fixture)

FAST = {"backoff": 0.01, "max_backoff": 0.05, "retries": 2}


def test_each_provider_gets_only_its_slice(
    make_api: Callable[..., Api],  # noqa: F811
    tmp_path: Path,
    fake_assemblyai: FakeAssemblyAI,
    fake_claude: FakeClaude,
    fake_resend: FakeResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for fake in (fake_assemblyai, fake_claude, fake_resend):
        for name, value in fake.env.items():
            monkeypatch.setenv(name, value)
    settings = settings_for(
        tmp_path / "data",
        transcriber=["assemblyai"],
        selector=["claude"],
        notifier="resend",
        providers={
            "assemblyai": FAST | {"poll_interval": 0.02},
            "claude": FAST | {"model": "claude-test-model"},
            "resend": {"sender": "Kadrio <robot@kadrio.example>"},
        },
    )
    api = make_api(settings)
    user, token = api.user(email="ann.private@example.org")
    source = FIXTURES / "talk.mp4"
    name = "ann-private-interview.mp4"
    created = api.upload(
        token,
        source,
        filename=name,
        options={"max_clips": 1, "min_seconds": 10, "max_seconds": 20},
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    job = api.job(token, job_id)
    assert job["status"] == "done", job
    assert job["providers"]["transcriber"] == "assemblyai"
    assert job["providers"]["selector"] == "claude"
    private = (
        "ann.private",
        "example.org",
        "ann-private-interview",
        user["id"],
        job_id,
        str(tmp_path),
    )

    # AssemblyAI: a WAV of the sound track, nothing of the picture, no name or address
    (upload,) = fake_assemblyai.uploads.values()
    with wave.open(io.BytesIO(upload)) as audio:
        assert audio.getnchannels() == 1 and audio.getnframes() > 0
    assert b"ftyp" not in upload[:64] and source.read_bytes()[:4096] not in upload
    for call in fake_assemblyai.server.calls():
        if call.path != "/v2/upload":
            assert not any(p in call.text for p in private), call.path
    (request,) = [c.json() for c in fake_assemblyai.server.calls("POST", "/v2/transcript")]
    assert request["audio_url"].startswith(fake_assemblyai.server.url + "/files/")

    # Claude: instructions and the transcript's lines, nothing else
    (call,) = fake_claude.server.calls("POST", "/v1/messages")
    user_text = call.json()["messages"][0]["content"]
    assert "\n\nTranscript:\n" in user_text and "[" in user_text.split("Transcript:\n")[1]
    assert not any(p in call.text for p in private)
    assert "base64" not in call.text and "image" not in call.text

    # Resend: the address and the message ("your clips are ready"), nothing else
    (sent,) = fake_resend.server.calls("POST", "/emails")
    mail = sent.json()
    assert set(mail) <= {"from", "to", "subject", "text", "html", "headers"}
    assert mail["to"] == ["ann.private@example.org"]
    assert user["id"] not in sent.text and str(tmp_path) not in sent.text

    # Robokassa: amount, invoice number and description, the email; no account data
    bought = api.client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=auth(token))
    link = bought.json()["url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert set(query) == {
        "MerchantLogin",
        "OutSum",
        "InvId",
        "Description",
        "SignatureValue",
        "Culture",
        "Email",
        "IsTest",
    }
    assert query["Email"] == "ann.private@example.org"
    assert user["id"] not in link and job_id not in link and name not in link
    assert json.dumps(query).count("ann.private") == 1  # only as the receipt address
