"""Telling the owner a job finished: an email through the notifier plugin, and the webhook.

Webhook requests carry ``X-Kadrio-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
under the user's webhook secret (``GET /api/v1/me``). Receivers recompute it over the bytes
they got and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from kadrio_core.errors import BadInput
from kadrio_core.models import Message
from kadrio_core.plugins import registry
from kadrio_core.providers import Notifier

from .db import Row, utcnow
from .jobs import job_clips, job_out
from .service import Service

log = logging.getLogger("kadrio.worker")
SIGNATURE_HEADER = "X-Kadrio-Signature"

_EMAIL = {
    "en": {
        "done_subject": "Your clips are ready: {name}",
        "done_text": "{count} clip(s) from {name} are ready:\n{link}\n",
        "empty_text": "We finished {name}: {message}.\n{link}\n",
        "failed_subject": "We could not make clips from {name}",
        "failed_text": "Processing {name} failed: {reason}\n{link}\n",
    },
    "ru": {
        "done_subject": "Клипы готовы: {name}",
        "done_text": "Клипы из {name} готовы ({count}):\n{link}\n",
        "empty_text": "Обработка {name} завершена: {message}.\n{link}\n",
        "failed_subject": "Не удалось сделать клипы из {name}",
        "failed_text": "Обработка {name} не удалась: {reason}\n{link}\n",
    },
}


class WebhookFailed(Exception):
    """The receiver did not answer 2xx (the queue retries with backoff)."""


def job_page_url(service: Service, job_id: str) -> str:
    return f"{service.settings.service.public_url.rstrip('/')}/jobs/{job_id}"


def job_api_url(service: Service, job_id: str) -> str:
    return f"{service.settings.service.public_url.rstrip('/')}/api/v1/jobs/{job_id}"


def email_for(service: Service, job: Row, user: Row) -> Message:
    texts = _EMAIL.get(user["language"], _EMAIL["en"])
    values = {
        "name": job["source_name"],
        "count": job["clip_count"] or 0,
        "message": job["message"] or "",
        "reason": job["error"] or "",
        "link": job_page_url(service, job["id"]),
    }
    if job["status"] == "failed":
        subject, text = texts["failed_subject"], texts["failed_text"]
    else:
        subject = texts["done_subject"]
        text = texts["done_text"] if job["clip_count"] else texts["empty_text"]
    return Message(
        to=user["email"],
        subject=subject.format(**values),
        text=text.format(**values),
        headers={"X-Kadrio-Job": job["id"]},
    )


def send_email(service: Service, job_id: str) -> None:
    """Email the owner once per finished job (claimed via notified_at; released on failure)."""
    claimed = service.db.execute(
        "UPDATE jobs SET notified_at = ? WHERE id = ? AND notified_at IS NULL "
        "AND status IN ('done', 'failed') AND deleted_at IS NULL",
        (utcnow(), job_id),
    )
    if not claimed:
        return
    job = service.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    assert job is not None
    user = service.db.one("SELECT * FROM users WHERE id = ?", (job["user_id"],))
    assert user is not None
    try:
        notifier = registry("notifier").create(service.settings.notifier, service.settings)
        assert isinstance(notifier, Notifier)
        notifier.send(email_for(service, job, user))
    except Exception:
        service.db.execute("UPDATE jobs SET notified_at = NULL WHERE id = ?", (job_id,))
        raise


# -- webhooks -------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(service: Service, job: Row) -> bytes:
    view = job_out(job, job_api_url(service, job["id"]) + "/clips", job_clips(service, job["id"]))
    payload = {
        "event": f"job.{job['status']}",
        "sent_at": datetime.now(UTC).isoformat(),
        "job": view.model_dump(mode="json"),
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse webhooks aimed inside our own network unless the operator allows it."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise BadInput(f"webhook host {host!r} does not resolve: {exc}") from None
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadInput(f"webhook host {host!r} is a private address ({address})")


def deliver_webhook(service: Service, job_id: str, retries_left: int) -> None:
    """POST the signed event; raise WebhookFailed to be retried while retries are left."""
    import httpx

    job = service.db.one("SELECT * FROM jobs WHERE id = ? AND deleted_at IS NULL", (job_id,))
    if job is None or not job["webhook_url"] or job["webhook_status"] == "delivered":
        return
    user = service.db.one("SELECT webhook_secret FROM users WHERE id = ?", (job["user_id"],))
    assert user is not None
    body = webhook_body(service, job)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Kadrio-Webhook/1",
        "X-Kadrio-Event": f"job.{job['status']}",
        "X-Kadrio-Delivery": uuid.uuid4().hex,
        SIGNATURE_HEADER: sign(user["webhook_secret"], body),
    }
    try:
        check_destination(job["webhook_url"], service.settings.service.webhook_allow_private)
        response = httpx.post(
            job["webhook_url"], content=body, headers=headers, timeout=10, follow_redirects=False
        )
        problem = None if response.is_success else f"HTTP {response.status_code}"
    except BadInput as exc:
        problem, retries_left = str(exc), 0  # a refused address does not get better
    except httpx.HTTPError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        status = "delivered"
    elif retries_left > 0:
        status = f"retrying: {problem}"
    else:
        status = f"failed: {problem}"
    service.db.execute("UPDATE jobs SET webhook_status = ? WHERE id = ?", (status[:500], job_id))
    if problem is not None:
        log.warning("webhook of job %s: %s", job_id, status)
        if retries_left > 0:
            raise WebhookFailed(problem)
