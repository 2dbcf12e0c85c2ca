"""The upload page and its POST, which streams through the same code as ``POST /api/v1/jobs``.

The page's script sends the form with XMLHttpRequest (a progress bar; a dropped connection is
retried from the start a few times, then offered to the user): fields ``consent``,
``consent_version`` and ``options`` go before ``file``, so a refusal is known before the bytes
arrive. The CSRF token travels in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kadrio_core.captions import caption_styles
from kadrio_core.settings import Settings

from .. import api, plans
from ..consent import BIOMETRIC
from ..db import Row, utcnow
from ..errors import ApiError
from .forms import CSRF_HEADER, same_origin
from .guards import member, member_json
from .render import page, path_for
from .site import site_of
from .visitors import csrf_ok

# the languages offered for the speech; "auto" lets the transcriber detect it
SPEECH_LANGUAGES = ("auto", "ru", "en", "de", "fr", "es", "it", "pt", "uk", "kk", "tr", "zh")

# API error codes the page explains in the visitor's language (others show the API's message)
EXPLAINED = (
    "consent_required",
    "consent_outdated",
    "file_required",
    "too_large",
    "unsupported_media",
    "too_short",
    "too_long",
    "invalid_options",
    "plan_limit",
    "quota_exceeded",
    "too_many_jobs",
    "unauthorized",
    "forbidden",
)


def _limits(settings: Settings, user: Row) -> dict[str, Any]:
    """The form's defaults and bounds: the service's settings within the user's plan."""
    plan = plans.effective_plan(plans.load_plans(settings), user, utcnow())
    return {
        "max_bytes": plans.upload_cap_for(settings, user),  # the plan's, or the server's
        "clips_limit": plan.clips_per_job,
        "seconds_limit": plan.max_clip_seconds,
        "defaults": {
            "max_clips": min(settings.max_clips, plan.clips_per_job),
            "min_seconds": settings.min_seconds,
            "max_seconds": min(settings.max_seconds, plan.max_clip_seconds),
            "caption_style": settings.caption_style,
        },
    }


async def upload_form(request: Request) -> Response:
    found, user = await member(request)
    settings = site_of(request).settings
    limits = await run_in_threadpool(_limits, settings, user)
    return await page(
        request,
        "upload.html",
        consent_text=BIOMETRIC.text.get(found.lang) or BIOMETRIC.text["en"],
        consent_version=BIOMETRIC.version,
        caption_styles=list(caption_styles()),
        speech_languages=SPEECH_LANGUAGES,
        explained=EXPLAINED,
        **limits,
    )


async def upload(request: Request) -> Response:
    found, user = await member_json(request)
    if not same_origin(request) or not csrf_ok(found, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "forbidden", "the page has expired; reload it and try again")
    job = await api.accept_upload(request, user)
    target = path_for(request, "web_job", job_id=job["id"])
    return JSONResponse({"id": job["id"], "status": job["status"], "url": target}, 202)
