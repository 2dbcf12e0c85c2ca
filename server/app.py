"""The Starlette application: the routes list and ``create_app(settings)``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from kadrio_core.settings import Settings, load_settings

from . import accounts, api, billing, cookies, web
from .errors import EXCEPTION_HANDLERS
from .service import Service, new_id
from .techlog import install_log_masking
from .uploads import remove_stale_uploads

log = logging.getLogger("kadrio.server")


def _check(name: str, probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = probe() or {}
    except Exception as exc:
        log.warning("health check %s failed: %s", name, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **extra}


def health(service: Service) -> dict[str, Any]:
    """Reachability of the database, the queue and the storage (a tiny object put and removed)."""

    def database() -> dict[str, Any]:
        service.db.ping()
        return {"engine": service.db.engine, "schema": service.db.schema_version()}

    def queue() -> dict[str, Any]:
        return {"pending": service.queue.pending()}

    def storage() -> dict[str, Any]:
        import tempfile
        from pathlib import Path

        key = f"healthz/{new_id()}"
        with tempfile.TemporaryDirectory(dir=service.tmp_dir()) as tmp:
            probe_file = Path(tmp) / "probe"
            probe_file.write_bytes(b"ok")
            service.storage.put(key, probe_file)
        service.storage.delete(key)
        return {"provider": service.settings.storage}

    checks = {"database": _check("database", database), "queue": _check("queue", queue)}
    checks["storage"] = _check("storage", storage)
    return {"ok": all(c["ok"] for c in checks.values()), **checks}


async def healthz(request: Request) -> Response:
    report = await run_in_threadpool(health, request.app.state.service)
    return JSONResponse(report, 200 if report["ok"] else 503)


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Mount("/api/v1", routes=api.routes),
    *billing.routes,
    *accounts.routes,
    *cookies.routes,
    *web.routes,
]


def create_app(settings: Settings | None = None, service: Service | None = None) -> Starlette:
    """The app for ``settings`` (default: loaded from the environment and kadrio.toml)."""
    install_log_masking()
    service = service or Service(settings or load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(service.db.open)
        await run_in_threadpool(service.db.upgrade)
        await run_in_threadpool(remove_stale_uploads, service.tmp_dir())
        yield
        await run_in_threadpool(service.close)

    handlers = web.exception_handlers(EXCEPTION_HANDLERS)  # error pages outside /api/
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.service = service
    web.install(app)
    return app
