"""The OpenAPI 3.1 document of ``/api/v1``, its schemas generated from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from .schemas import ClipList, ConsentOut, Created, ErrorOut, JobList, JobOptions, JobOut, UserOut

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "bad request (see error.code)",
        401: "missing or revoked token",
        402: "the plan's minutes for this month are used up",
        404: "no such object for this user",
        413: "the upload is over the size limit",
        415: "not multipart/form-data",
        422: "the file is not usable media, too short, or longer than the plan allows",
        409: "the plan cannot be bought now (a dearer one is running)",
        429: "the plan's concurrent jobs are all running",
    }
    return {str(s): _json("ErrorOut", text[s]) for s in statuses}


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
CLIP_ID = {"name": "clip_id", "in": "path", "required": True, "schema": {"type": "string"}}
KIND = {
    "name": "kind",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["video", "preview", "srt", "vtt"]},
}


def paths() -> dict[str, Any]:
    upload_form = {
        "type": "object",
        "required": ["file", "consent"],
        "properties": {
            "consent": {
                "type": "string",
                "enum": ["true"],
                "description": "consent to processing biometric data (GET /consent)",
            },
            "consent_version": {"type": "string", "description": "the version shown, if any"},
            "options": {
                "type": "string",
                "contentMediaType": "application/json",
                "description": "JSON of JobOptions",
            },
            "file": {"type": "string", "format": "binary", "description": "video or audio"},
        },
    }
    return {
        "/jobs": {
            "post": {
                "operationId": "create_job",
                "summary": "Upload a video or audio file and start a job",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": upload_form}},
                },
                "responses": {
                    "202": _json("Created", "accepted; poll GET /jobs/{id}"),
                    **_errors(400, 401, 402, 413, 415, 422, 429),
                },
            },
            "get": {
                "operationId": "list_jobs",
                "summary": "Your jobs, newest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}},
                    {"name": "before", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _json("JobList", "a page of jobs"), **_errors(400, 401)},
            },
        },
        "/jobs/{job_id}": {
            "parameters": [JOB_ID],
            "get": {
                "operationId": "get_job",
                "summary": "Status, progress 0-100, error reason, providers and timestamps",
                "responses": {"200": _json("JobOut", "the job"), **_errors(401, 404)},
            },
            "delete": {
                "operationId": "delete_job",
                "summary": "Delete the job with its source, transcript, clips and previews",
                "responses": {"204": {"description": "deleted"}, **_errors(401, 404)},
            },
        },
        "/jobs/{job_id}/clips": {
            "parameters": [JOB_ID],
            "get": {
                "operationId": "job_clips",
                "summary": "The job's clips with URLs of their files",
                "responses": {"200": _json("ClipList", "clips"), **_errors(401, 404)},
            },
        },
        "/jobs/{job_id}/clips/{clip_id}/{kind}": {
            "parameters": [JOB_ID, CLIP_ID, KIND],
            "get": {
                "operationId": "clip_file",
                "summary": "A clip file (Range requests supported), or a redirect to S3",
                "responses": {
                    "200": {"description": "the file"},
                    "206": {"description": "the requested byte range"},
                    "307": {"description": "redirect to a short-lived presigned URL"},
                    **_errors(401, 404),
                },
            },
        },
        "/jobs/{job_id}/transcript": {
            "parameters": [JOB_ID],
            "get": {
                "operationId": "job_transcript",
                "summary": "The transcript (words with timestamps) once transcription is done",
                "responses": {"200": {"description": "transcript.json"}, **_errors(401, 404)},
            },
        },
        "/me": {
            "get": {
                "operationId": "me",
                "summary": "Your account and webhook signing secret",
                "responses": {"200": _json("UserOut", "the account"), **_errors(401)},
            },
        },
        "/consent": {
            "get": {
                "operationId": "consent",
                "summary": "The biometric-data consent text and its version",
                "security": [],
                "responses": {"200": _json("ConsentOut", "the text in en and ru")},
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            },
        },
    }


def document(base_url: str) -> dict[str, Any]:
    models = [Created, JobOptions, JobOut, JobList, ClipList, UserOut, ConsentOut, ErrorOut]
    _, schemas = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    from kadrio_core import __version__

    from . import billing

    return {
        "openapi": "3.1.0",
        "info": {"title": "Kadrio API", "version": __version__},
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": billing.openapi_paths(paths()),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
