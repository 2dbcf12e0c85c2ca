"""Each message becomes an ``.eml`` file in ``<data dir>/outbox/``: email for laptops and tests."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Message
from kadrio_core.providers import Notifier, ProviderOptions


class OutboxOptions(ProviderOptions):
    folder: Path | None = Field(default=None, description="default: <data dir>/outbox")
    sender: str = "Kadrio <no-reply@kadrio.localhost>"


def to_email(message: Message, default_sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = message.sender or default_sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain="kadrio.localhost")
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class OutboxNotifier(Notifier):
    name = "outbox"
    description = "writes .eml files to <data dir>/outbox"
    Options: ClassVar[type[ProviderOptions]] = OutboxOptions
    options: OutboxOptions

    @property
    def folder(self) -> Path:
        return self.options.folder or self.settings.data_dir / "outbox"

    def send(self, message: Message) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        ident = f"{stamp}-{uuid.uuid4().hex[:8]}"
        target = self.folder / f"{ident}.eml"
        tmp = self.folder / f".{ident}.part"
        tmp.write_bytes(bytes(to_email(message, self.options.sender)))
        os.replace(tmp, target)
        return ident


@hookimpl
def register_notifiers(register):  # type: ignore[no-untyped-def]
    register(OutboxNotifier)
