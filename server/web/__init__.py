"""The web app for people: server-rendered pages (Jinja2) next to the JSON API.

``create_app`` mounts :data:`routes` and calls :func:`install`, which adds the security
headers and the HTML error pages (the API keeps its JSON errors). Templates, static files,
message catalogs and policies are package data of kadrio_server.
"""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import account, dashboard, pages, signin, upload
from .errors import exception_handlers
from .headers import SecurityHeaders
from .site import build_site

__all__ = ["exception_handlers", "install", "routes"]


def _static() -> StaticFiles:
    return StaticFiles(directory=str(resources.files("kadrio_server") / "static"))


routes: list[BaseRoute] = [
    Route("/", pages.landing, methods=["GET"], name="web_landing"),
    Route("/privacy", pages.policy, methods=["GET"], name="web_privacy"),
    Route("/legal/{name}", pages.policy, methods=["GET"], name="web_policy"),
    Route("/language", pages.switch_language, methods=["POST"], name="web_language"),
    Route("/signin", signin.sign_in_form, methods=["GET"], name="web_signin"),
    Route("/signin", signin.request_link, methods=["POST"], name="web_signin_request"),
    Route("/signin/confirm", signin.confirm_form, methods=["GET"], name="web_confirm"),
    Route("/signin/confirm", signin.confirm, methods=["POST"], name="web_confirm_post"),
    Route("/signout", signin.sign_out, methods=["POST"], name="web_signout"),
    Route("/dashboard", dashboard.dashboard, methods=["GET"], name="web_dashboard"),
    Route(
        "/dashboard/status.json",
        dashboard.dashboard_status,
        methods=["GET"],
        name="web_dashboard_status",
    ),
    Route("/upload", upload.upload_form, methods=["GET"], name="web_upload"),
    Route("/upload", upload.upload, methods=["POST"], name="web_upload_post"),
    Route("/jobs/{job_id}", dashboard.job_page, methods=["GET"], name="web_job"),
    Route(
        "/jobs/{job_id}/status.json", dashboard.job_status, methods=["GET"], name="web_job_status"
    ),
    Route(
        "/jobs/{job_id}/delete", dashboard.delete_confirm, methods=["GET"], name="web_job_delete"
    ),
    Route("/jobs/{job_id}/delete", dashboard.delete, methods=["POST"], name="web_job_delete_post"),
    Route(
        "/jobs/{job_id}/clips/{clip_id}/{kind}",
        dashboard.clip_file,
        methods=["GET"],
        name="web_clip_file",
    ),
    Route("/account/data", account.your_data, methods=["GET"], name="web_data"),
    Route("/account/data.json", account.your_data_json, methods=["GET"], name="web_data_json"),
    Route("/account/tokens", account.tokens, methods=["GET"], name="web_tokens"),
    Route("/account/tokens", account.create, methods=["POST"], name="web_tokens_create"),
    Route(
        "/account/tokens/{token_id}/revoke",
        account.revoke,
        methods=["POST"],
        name="web_tokens_revoke",
    ),
    Mount("/static", app=_static(), name="static"),
]


def install(app: Starlette) -> None:
    """Add what the pages need to ``app`` (call before it starts)."""
    service = app.state.service
    app.state.site = build_site(service)
    app.add_middleware(SecurityHeaders, settings=service.settings)
