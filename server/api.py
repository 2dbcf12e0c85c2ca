"""The JSON API under ``/api/v1``. Every route but the consent text needs a bearer token, and
every object is looked up together with its owner: another user's id answers 404."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kadrio_core.errors import BadInput
from kadrio_core.media import probe
from kadrio_core.pipeline import Pipeline

from . import accounts, billing, files, jobs, plans, techlog
from .auth import require_user
from .consent import BIOMETRIC
from .db import Row
from .errors import ApiError, not_found
from .schemas import ClipList, ConsentOut, Created, JobList, JobOptions
from .service import Service, transcript_key
from .uploads import Upload, receive
from .users import user_out

log = logging.getLogger("kadrio.server")
PAGE_MAX = 200


def _service(request: Request) -> Service:
    return request.app.state.service


def _json(model: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status, headers=headers)


def _clips_url(request: Request, job_id: str) -> str:
    return str(request.url_for("job_clips", job_id=job_id))


async def _owned_job(request: Request, user: Row) -> Row:
    job = await run_in_threadpool(
        jobs.owned_job, _service(request), user["id"], request.path_params["job_id"]
    )
    if job is None:
        raise not_found("job")
    return job


# -- jobs -----------------------------------------------------------------------------------


async def create_job(request: Request) -> Response:
    user = await require_user(request)
    job = await accept_upload(request, user)
    created = Created(id=job["id"], status=job["status"])
    location = str(request.url_for("get_job", job_id=job["id"]))
    return _json(created, 202, headers={"Location": location})


async def accept_upload(request: Request, user: Row) -> Row:
    """Stream the request's multipart upload, check consent, media and options, store the job
    and queue it. ``POST /jobs`` and the web app's upload page both come through here."""
    service = _service(request)
    cap = plans.upload_cap_for(service.settings, user)  # the plan's, or the server's if smaller
    async with receive(request, cap, service.tmp_dir()) as upload:
        if upload.fields.get("consent", "").strip().lower() != "true":
            raise ApiError(
                400,
                "consent_required",
                "send consent=true: processing this file means processing biometric data "
                f"(faces, voices); the consent text is at /api/v1/consent (version "
                f"{BIOMETRIC.version})",
            )
        version = upload.fields.get("consent_version")
        if version is not None and version != BIOMETRIC.version:
            raise ApiError(
                400,
                "consent_outdated",
                f"consent_version {version!r} is not the current text ({BIOMETRIC.version})",
            )
        if upload.path is None or upload.size == 0:
            raise ApiError(400, "file_required", "send the video or audio as the 'file' field")
        options = _options(upload.fields.get("options"))
        job = await run_in_threadpool(_accept, service, user, upload, options)
    await run_in_threadpool(techlog.record_request, service.db, "upload", request, user["id"])
    await run_in_threadpool(service.queue.transcribe, job["id"])
    return job


def _options(raw: str | None) -> JobOptions:
    try:
        return JobOptions.model_validate_json(raw or "{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise ApiError(400, "invalid_options", f"options: {where}: {first['msg']}") from None


def _accept(service: Service, user: Row, upload: Upload, options: JobOptions) -> Row:
    """Probe the media (its bytes, not its name), check the options, then store the job."""
    assert upload.path is not None
    name = upload.filename or "upload"
    try:
        media = probe(upload.path)
    except BadInput as exc:
        message = str(exc).replace(str(upload.path), name)
        raise ApiError(422, "unsupported_media", message) from None
    options = plans.options_within_plan(service.settings, user, options)
    settings = jobs.settings_for(service.settings, options)
    try:
        request = settings.selection_request(prompt=options.prompt)
        Pipeline(settings).check_providers()
    except (BadInput, ValidationError) as exc:
        raise ApiError(400, "invalid_options", str(exc).splitlines()[0]) from None
    if media.duration < request.min_seconds:
        raise ApiError(
            422,
            "too_short",
            f"{name} is {media.duration:.1f} s long, shorter than the minimum clip length "
            f"of {request.min_seconds:g} s",
        )
    path = upload.path
    return plans.store_within_plan(  # the plan's length, minutes and concurrency
        service.db,
        plans.load_plans(service.settings),
        user,
        media.duration,
        lambda: jobs.create_job(service, user, path, name, media, options),
    )


async def list_jobs(request: Request) -> Response:
    user = await require_user(request)
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a number") from None
    if not 1 <= limit <= PAGE_MAX:
        raise ApiError(400, "bad_request", f"limit must be between 1 and {PAGE_MAX}")
    before = request.query_params.get("before")
    rows = await run_in_threadpool(jobs.list_jobs, _service(request), user["id"], limit + 1, before)
    more = len(rows) > limit
    rows = rows[:limit]
    # one route lookup per page, not per job: it is a large share of this hot endpoint's time
    base = str(request.url_for("list_jobs"))
    page = JobList(
        jobs=[jobs.job_out(r, f"{base}/{r['id']}/clips") for r in rows],
        next=rows[-1]["id"] if more else None,
    )
    return _json(page)


async def get_job(request: Request) -> Response:
    user = await require_user(request)
    job = await _owned_job(request, user)
    clips = await run_in_threadpool(jobs.job_clips, _service(request), job["id"])
    return _json(jobs.job_out(job, _clips_url(request, job["id"]), clips))


async def job_clips(request: Request) -> Response:
    user = await require_user(request)
    job = await _owned_job(request, user)
    service = _service(request)

    def build() -> ClipList:
        out = []
        for clip in jobs.job_clips(service, job["id"]):

            def url_for(kind: str, clip: Row = clip) -> str | None:
                key = jobs.clip_file_key(clip, kind)
                if key is None:
                    return None
                route = request.url_for(
                    "clip_file", job_id=job["id"], clip_id=clip["id"], kind=kind
                )
                return files.public_url(service, key, str(route))

            out.append(jobs.clip_out(clip, url_for))
        return ClipList(clips=out)

    return _json(await run_in_threadpool(build))


async def clip_file(request: Request) -> Response:
    user = await require_user(request)
    service = _service(request)
    params = request.path_params
    clip = await run_in_threadpool(
        jobs.owned_clip, service, user["id"], params["job_id"], params["clip_id"]
    )
    if clip is None:
        raise not_found("clip")
    key = jobs.clip_file_key(clip, params["kind"])
    if key is None:
        raise not_found("file")
    ext = jobs.FILE_KINDS[params["kind"]]
    return await run_in_threadpool(
        files.file_response, service, key, f"clip-{clip['idx']:02d}.{ext}"
    )


async def job_transcript(request: Request) -> Response:
    user = await require_user(request)
    job = await _owned_job(request, user)
    key = transcript_key(job["user_id"], job["id"])
    return await run_in_threadpool(files.file_response, _service(request), key, "transcript.json")


async def delete_job(request: Request) -> Response:
    user = await require_user(request)
    service = _service(request)
    job_id = request.path_params["job_id"]
    if not await run_in_threadpool(delete_owned_job, service, user["id"], job_id):
        raise not_found("job")
    return Response(status_code=204)


def delete_owned_job(service: Service, user_id: str, job_id: str) -> bool:
    """Hide the user's job at once and erase it in one cascade; False if they have no such job.
    The API's DELETE and the web app's "Delete" both come through here."""
    if not jobs.mark_deleted(service, user_id, job_id):
        return False
    try:
        jobs.erase_job(service, job_id)
    except Exception as exc:
        # hidden from the user already; the queue and the workers' recovery retry the erasure
        log.warning("erasing job %s failed (%s); queued for another try", job_id, exc)
        try:
            service.queue.erase(job_id)
        except Exception:
            log.exception("could not queue the erasure of job %s", job_id)
    return True


# -- account and documents ------------------------------------------------------------------


async def me(request: Request) -> Response:
    return _json(user_out(await require_user(request)))


async def consent(request: Request) -> Response:
    return _json(ConsentOut(kind=BIOMETRIC.kind, version=BIOMETRIC.version, text=BIOMETRIC.text))


async def openapi(request: Request) -> Response:
    from .openapi import document

    return JSONResponse(document(str(request.base_url).rstrip("/")))


routes = [
    Route("/jobs", create_job, methods=["POST"], name="create_job"),
    Route("/jobs", list_jobs, methods=["GET"], name="list_jobs"),
    Route("/jobs/{job_id}", get_job, methods=["GET"], name="get_job"),
    Route("/jobs/{job_id}", delete_job, methods=["DELETE"], name="delete_job"),
    Route("/jobs/{job_id}/clips", job_clips, methods=["GET"], name="job_clips"),
    Route("/jobs/{job_id}/clips/{clip_id}/{kind}", clip_file, methods=["GET"], name="clip_file"),
    Route("/jobs/{job_id}/transcript", job_transcript, methods=["GET"], name="job_transcript"),
    Route("/me", me, methods=["GET"], name="me"),
    Route("/consent", consent, methods=["GET"], name="consent"),
    Route("/openapi.json", openapi, methods=["GET"], name="openapi"),
    *billing.api_routes,  # plans and payments
    *accounts.api_routes,  # DELETE /me
]
