"""Fixtures of the service tests: a real PostgreSQL database made for the session, the app in
process (huey immediate mode unless a test runs a real worker), users with tokens."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the service tests need the server extra")

from starlette.testclient import TestClient

from kadrio_core.models import OutputFormat
from kadrio_core.settings import ServiceSettings, Settings
from kadrio_server.app import create_app
from kadrio_server.auth import create_token
from kadrio_server.db import Row
from kadrio_server.service import Service, job_prefix
from kadrio_server.users import create_user

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SMALL = OutputFormat(width=270, height=480)  # cheap renders where the size is not under test
CLIP_OPTIONS = {"max_clips": 2, "min_seconds": 10, "max_seconds": 20}


def fresh_database(prefix: str) -> Iterator[str]:
    """Create a database on the local PostgreSQL, yield its URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"these tests need PostgreSQL on 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped at the end of the session."""
    yield from fresh_database("kadrio_test")


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    service = ServiceSettings(**overrides.pop("service", {}))
    fields: dict[str, Any] = {
        "data_dir": data_dir,
        "queue_url": "immediate://",
        "output": SMALL,
        "service": service,
    }
    return Settings(**(fields | overrides))


@dataclass
class Api:
    client: TestClient
    service: Service

    def user(
        self, email: str | None = None, language: str = "en", plan: str = "free"
    ) -> tuple[Row, str]:
        email = email or f"{uuid.uuid4().hex[:8]}@example.org"
        user = create_user(self.service.db, email, plan=plan, language=language)
        token, _ = create_token(self.service.db, email)
        return user, token

    def upload(
        self,
        token: str,
        path: Path,
        *,
        consent: str | None = "true",
        options: dict[str, Any] | None = None,
        filename: str | None = None,
    ) -> Any:
        data = {}
        if consent is not None:
            data["consent"] = consent
        if options is not None:
            import json

            data["options"] = json.dumps(options)
        with path.open("rb") as fh:
            return self.client.post(
                "/api/v1/jobs",
                data=data,
                files={"file": (filename or path.name, fh, "application/octet-stream")},
                headers=auth(token),
            )

    def get(self, token: str, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=auth(token) | kwargs.pop("headers", {}), **kwargs)

    def job(self, token: str, job_id: str) -> dict[str, Any]:
        response = self.get(token, f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Build the app for some settings and run its lifespan (migrations) for the test."""
    with ExitStack() as stack:

        def build(settings: Settings | None = None, **overrides: Any) -> Api:
            settings = settings or make_settings(tmp_path / "data", **overrides)
            service = Service(settings)
            client = stack.enter_context(
                TestClient(create_app(service=service), base_url="http://testserver")
            )
            return Api(client, service)

        yield build


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The app on SQLite with local storage and immediate tasks."""
    return make_api()


def rows_of_job(service: Service, job_id: str) -> dict[str, int]:
    counts = {}
    for table, column in (("jobs", "id"), ("clips", "job_id"), ("consents", "job_id")):
        row = service.db.one(f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = ?", (job_id,))
        assert row is not None
        counts[table] = int(row["n"])
    return counts


def assert_erased(service: Service, user_id: str, job_id: str) -> None:
    """Nothing of the job is left: no row, no object, no scratch folder."""
    assert rows_of_job(service, job_id) == {"jobs": 0, "clips": 0, "consents": 0}
    assert list(service.storage.list(job_prefix(user_id, job_id))) == []
    assert not service.work_dir(job_id).exists()
