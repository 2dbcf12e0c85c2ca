"""The dashboard: the user's jobs with live status, a job's clips and transcript, delete.

Every lookup goes through kadrio_server.jobs with the signed-in user's id: another user's job
answers 404, exactly like the API. Files are delivered by kadrio_server.files (local: served
with Range support; S3: a short-lived presigned URL).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kadrio_core.captions import SENTENCE_END
from kadrio_core.models import Transcript

from .. import api, files, jobs
from ..db import Row
from ..errors import ApiError, not_found
from ..service import Service, transcript_key
from .forms import read_form
from .guards import member, member_json
from .i18n import Translator
from .render import page, path_for, redirect, translator
from .retention import job_retention
from .site import site_of

PAGE_SIZE = 50
PARAGRAPH_WORDS = 40


def job_view(t: Translator, job: Row, user: Row, service: Service) -> dict[str, Any]:
    media = json.loads(job["media"])
    return {
        "id": job["id"],
        "name": job["source_name"],
        "status": job["status"],
        "label": t(f"status.{job['status']}"),
        "progress": job["progress"],
        "active": job["status"] in jobs.ACTIVE,
        "error": job["error"],
        "message": job["message"],
        "clip_count": job["clip_count"],
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
        "duration": media.get("duration"),
        "size": job["source_size"],
        "expires_at": job_retention(service.settings, user, job),
        "options": json.loads(job["options"]),
        "providers": json.loads(job["providers"]),
    }


def status_json(t: Translator, job: Row) -> dict[str, Any]:
    return {
        "id": job["id"],
        "status": job["status"],
        "label": t(f"status.{job['status']}"),
        "progress": job["progress"],
        "active": job["status"] in jobs.ACTIVE,
    }


async def dashboard(request: Request) -> Response:
    found, user = await member(request)
    service = site_of(request).service
    before = request.query_params.get("before")
    rows = await run_in_threadpool(jobs.list_jobs, service, user["id"], PAGE_SIZE + 1, before)
    t = translator(request, found)
    views = [job_view(t, r, user, service) for r in rows[:PAGE_SIZE]]
    older = rows[PAGE_SIZE - 1]["id"] if len(rows) > PAGE_SIZE else None
    return await page(
        request,
        "dashboard.html",
        jobs=views,
        older=older,
        deleted=request.query_params.get("deleted") == "1",
    )


async def dashboard_status(request: Request) -> Response:
    """What the dashboard polls: status and progress of the user's latest jobs."""
    found, user = await member_json(request)
    service = site_of(request).service
    rows = await run_in_threadpool(jobs.list_jobs, service, user["id"], PAGE_SIZE, None)
    t = translator(request, found)
    return JSONResponse(
        {"jobs": [status_json(t, r) for r in rows]}, headers={"Cache-Control": "no-store"}
    )


async def _owned(request: Request, user: Row) -> Row:
    service = site_of(request).service
    job = await run_in_threadpool(
        jobs.owned_job, service, user["id"], request.path_params["job_id"]
    )
    if job is None:
        raise HTTPException(404)
    return job


def clip_views(request: Request, service: Service, job: Row) -> list[dict[str, Any]]:
    views = []
    for clip in jobs.job_clips(service, job["id"]):

        def url_for(kind: str, clip: Row = clip) -> str | None:
            key = jobs.clip_file_key(clip, kind)
            if key is None:
                return None
            route = path_for(
                request, "web_clip_file", job_id=job["id"], clip_id=clip["id"], kind=kind
            )
            return files.public_url(service, key, route)

        views.append(jobs.clip_out(clip, url_for).model_dump())
    return views


def transcript_paragraphs(service: Service, job: Row) -> list[dict[str, Any]]:
    """The stored transcript as paragraphs of sentences, each with its start time."""
    key = transcript_key(job["user_id"], job["id"])
    with tempfile.TemporaryDirectory(dir=service.tmp_dir()) as tmp:
        path = Path(tmp) / "transcript.json"
        try:
            service.storage.get(key, path)
            transcript = Transcript.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return []
    paragraphs: list[dict[str, Any]] = []
    words: list[str] = []
    start = 0.0
    for word in transcript.words:
        if not words:
            start = word.start
        words.append(word.text.strip())
        if len(words) >= PARAGRAPH_WORDS and word.text.rstrip().endswith(SENTENCE_END):
            paragraphs.append({"start": start, "text": " ".join(words)})
            words = []
    if words:
        paragraphs.append({"start": start, "text": " ".join(words)})
    return paragraphs


async def job_page(request: Request) -> Response:
    found, user = await member(request)
    service = site_of(request).service
    job = await _owned(request, user)
    clips = await run_in_threadpool(clip_views, request, service, job)
    transcript = []
    if job["status"] in ("selecting", "rendering", "done"):
        transcript = await run_in_threadpool(transcript_paragraphs, service, job)
    view = job_view(translator(request, found), job, user, service)
    renderers = {c["renderer"] for c in clips if c["renderer"]}
    if renderers:
        view["providers"].setdefault("renderer", ", ".join(sorted(renderers)))
    return await page(request, "job.html", job=view, clips=clips, transcript=transcript)


async def job_status(request: Request) -> Response:
    found, user = await member_json(request)
    service = site_of(request).service
    job = await run_in_threadpool(
        jobs.owned_job, service, user["id"], request.path_params["job_id"]
    )
    if job is None:
        raise not_found("job")
    body = status_json(translator(request, found), job) | {"error": job["error"]}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def delete_confirm(request: Request) -> Response:
    found, user = await member(request)
    job = await _owned(request, user)
    service = site_of(request).service
    view = job_view(translator(request, found), job, user, service)
    return await page(request, "job_delete.html", job=view)


async def delete(request: Request) -> Response:
    await read_form(request)
    _, user = await member(request)
    service = site_of(request).service
    deleted = await run_in_threadpool(
        api.delete_owned_job, service, user["id"], request.path_params["job_id"]
    )
    if not deleted:
        raise HTTPException(404)
    return await redirect(request, "/dashboard?deleted=1")


async def clip_file(request: Request) -> Response:
    _, user = await member(request)
    service = site_of(request).service
    params = request.path_params
    clip = await run_in_threadpool(
        jobs.owned_clip, service, user["id"], params["job_id"], params["clip_id"]
    )
    key = jobs.clip_file_key(clip, params["kind"]) if clip is not None else None
    if clip is None or key is None:
        raise HTTPException(404)
    ext = jobs.FILE_KINDS[params["kind"]]
    try:
        return await run_in_threadpool(
            files.file_response, service, key, f"clip-{clip['idx']:02d}.{ext}"
        )
    except ApiError as exc:  # the file is gone from storage
        raise HTTPException(exc.status) from None
