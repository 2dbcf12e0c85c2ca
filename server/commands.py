"""What the service's CLI commands do (``kadrio serve``, ``worker``, ``db``, ``users``,
``tokens``); kadrio_core.cli imports this module inside each command."""

from __future__ import annotations

import logging

import click

from kadrio_core.settings import load_settings

from .service import Service


def _service() -> Service:
    service = Service(load_settings())
    service.db.open()
    return service


def _logging() -> None:
    from .techlog import install_log_masking

    install_log_masking()  # no email address reaches the logs
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve(host: str, port: int, with_worker: bool, threads: int) -> None:
    import uvicorn

    from .app import create_app
    from .recovery import Sweeper

    _logging()
    service = _service()
    service.db.upgrade()
    consumer = sweeper = None
    if with_worker:
        consumer = service.queue.consumer(threads)
        consumer.start()
        sweeper = Sweeper(service)
        sweeper.start()
    click.echo(f"kadrio: serving on http://{host}:{port} ({service.db.engine})", err=True)
    try:
        uvicorn.run(create_app(service=service), host=host, port=port, log_level="info")
    finally:
        if sweeper is not None:
            sweeper.stop()
        if consumer is not None:
            consumer.stop(graceful=False)


def worker(threads: int) -> None:
    from .recovery import Sweeper

    _logging()
    service = _service()
    service.db.upgrade()
    sweeper = Sweeper(service)
    sweeper.start()
    try:
        service.queue.consumer(threads).run()
    finally:
        sweeper.stop()
        service.close()


def db_upgrade() -> None:
    service = _service()
    try:
        applied = service.db.upgrade()
        version = service.db.schema_version()
    finally:
        service.close()
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"database schema at version {version} ({service.db.engine})")


def users_create(email: str, plan: str, language: str) -> None:
    from .users import create_user

    service = _service()
    try:
        service.db.upgrade()
        user = create_user(service.db, email, plan, language)
    finally:
        service.close()
    click.echo(f"created user {user['email']} (id {user['id']}, plan {user['plan']})")


def tokens_create(email: str) -> None:
    from .auth import create_token

    service = _service()
    try:
        token, row = create_token(service.db, email)
    finally:
        service.close()
    click.echo(f"token id {row['id']} for {email}; it is shown only once:", err=True)
    click.echo(token)


def tokens_revoke(token_or_id: str) -> None:
    from .auth import revoke_token

    service = _service()
    try:
        row = revoke_token(service.db, token_or_id)
    finally:
        service.close()
    click.echo(f"revoked token {row['id']}")
