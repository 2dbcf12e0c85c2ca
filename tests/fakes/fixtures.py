"""Pytest fixtures for the provider tests (imported by tests/conftest.py).

- ``seaweedfs``: one real SeaweedFS S3 per test session, in a temp dir, on 127.0.0.1;
  ``s3_bucket``: a fresh bucket in it for one test.
- ``smtp_server``: a factory of aiosmtpd servers on loopback (plain, STARTTLS with login, SSL),
  with a trustme CA whose file the SMTP notifier can be told to trust.
- ``fake_assemblyai``, ``fake_claude``, ``fake_openai``, ``fake_resend``: the fake APIs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import seaweedfs as seaweedfs_server
from .providers import FakeAssemblyAI, FakeClaude, FakeOpenAI, FakeResend


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs_server.SeaweedFS]:
    server = seaweedfs_server.start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(seaweedfs: seaweedfs_server.SeaweedFS) -> str:
    return seaweedfs.new_bucket()


@pytest.fixture
def fake_assemblyai() -> Iterator[FakeAssemblyAI]:
    fake = FakeAssemblyAI()
    with fake.server:
        yield fake


@pytest.fixture
def fake_claude() -> Iterator[FakeClaude]:
    fake = FakeClaude()
    with fake.server:
        yield fake


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(key="sk-local-test")
    with fake.server:
        yield fake


@pytest.fixture
def fake_resend() -> Iterator[FakeResend]:
    fake = FakeResend()
    with fake.server:
        yield fake


# -- SMTP ---------------------------------------------------------------------------------


@dataclass
class SMTPServer:
    host: str
    port: int
    ca_file: Path
    messages: list[Any] = field(default_factory=list)  # (envelope, parsed message)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Recorder:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email import policy

        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.server.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A CA and a server certificate for 127.0.0.1 (trustme), and the CA's PEM file."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.fixture
def smtp_server(smtp_tls: tuple[Any, Path]) -> Iterator[Callable[..., SMTPServer]]:
    """Start aiosmtpd on loopback: ``smtp_server("starttls", login=("ann", "pw"))``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from .seaweedfs import free_ports

    context, ca_file = smtp_tls
    controllers: list[Any] = []

    def start(security: str = "none", login: tuple[str, str] | None = None) -> SMTPServer:
        server = SMTPServer("127.0.0.1", free_ports(1)[0], ca_file)

        def authenticate(_srv: Any, _session: Any, _env: Any, _mech: str, data: Any) -> Any:
            given = (data.login.decode(), data.password.decode())
            server.logins.append(given)
            return AuthResult(success=given == login, handled=False)

        kwargs: dict[str, Any] = {}
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif security == "ssl":
            kwargs.update(ssl_context=context)
        if login:
            kwargs.update(authenticator=authenticate, auth_required=True)
        controller = Controller(_Recorder(server), hostname=server.host, port=server.port, **kwargs)
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for controller in controllers:
        controller.stop()
