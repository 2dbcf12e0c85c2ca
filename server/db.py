"""A thin layer over sqlite3 and psycopg 3 (with a connection pool): plain SQL, rows as dicts.

SQL is written once with ``?`` placeholders; for PostgreSQL they become ``%s`` here and nowhere
else. Times are passed in from Python (``utcnow()``), never taken from the database clock, so
both engines compare them the same way: ``TIMESTAMPTZ`` in PostgreSQL, fixed-width UTC text in
SQLite (which sorts like time).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from kadrio_core.errors import BadInput
from kadrio_core.settings import Settings

Engine = Literal["sqlite", "postgresql"]
Row = dict[str, Any]
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f+00:00"
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _adapt_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime passed to the database")
    return value.astimezone(UTC).strftime(_SQLITE_TIME)


def _convert_time(raw: bytes) -> datetime:
    return datetime.strptime(raw.decode(), _SQLITE_TIME.replace("+00:00", "%z"))


sqlite3.register_adapter(datetime, _adapt_time)
sqlite3.register_converter("TIMESTAMPTZ", _convert_time)


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.data_dir / 'kadrio.db'}"


class Cursorish(Protocol):
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


@dataclass
class Tx:
    """Statements on one connection; inside ``Database.transaction()`` they commit together."""

    conn: Any
    engine: Engine

    def _sql(self, sql: str) -> str:
        return sql if self.engine == "sqlite" else sql.replace("%", "%%").replace("?", "%s")

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        row = cur.fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        return [dict(r) for r in cur.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        return self.conn.execute(self._sql(sql), tuple(params)).rowcount

    def script(self, sql: str) -> None:
        if self.engine == "sqlite":
            # executescript would COMMIT first; run statement by statement inside our BEGIN
            for statement in _statements(sql):
                self.conn.execute(statement)
        else:
            self.conn.execute(sql)


def _statements(sql: str) -> Iterator[str]:
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


class Database:
    """One database, either engine. Thread-safe: connections are per thread or pooled."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.engine: Engine = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///")).expanduser()
            self._local = threading.local()
            self._pool = None
        elif url.startswith(("postgresql://", "postgres://")):
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            self.engine = "postgresql"
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "row_factory": dict_row},
                open=False,
                name="kadrio",
            )
        else:
            raise BadInput(
                f"unsupported database URL {_safe(url)!r}: use postgresql://... or sqlite:///path"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings), settings.service.db_pool_size)

    # -- connections -------------------------------------------------------------------------

    def open(self) -> None:
        if self._pool is not None:
            self._pool.open(wait=False)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        else:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=30,
                isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
                detect_types=sqlite3.PARSE_DECLTYPES,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _connection(self, timeout: float = 30.0) -> Iterator[Any]:
        if self._pool is None:
            yield self._sqlite()
            return
        self._pool.open(wait=False)
        with self._pool.connection(timeout=timeout) as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """All statements commit together, or none (rolled back on any exception)."""
        with self._connection() as conn:
            if self.engine == "sqlite":
                # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(conn, "sqlite")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield Tx(conn, "postgresql")

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self._connection() as conn:
            return Tx(conn, self.engine).one(sql, params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._connection() as conn:
            return Tx(conn, self.engine).all(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._connection() as conn:
            return Tx(conn, self.engine).execute(sql, params)

    def ping(self, timeout: float = 3.0) -> None:
        """Raise unless the database answers within ``timeout`` seconds."""
        with self._connection(timeout) as conn:
            Tx(conn, self.engine).one("SELECT 1 AS ok")

    # -- migrations --------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        """Apply the migrations not applied yet, each in its own transaction; return their names.

        Safe to run from several processes at once: PostgreSQL serialises on an advisory lock,
        SQLite on its write lock.
        """
        applied: list[str] = []
        for name, sql in migrations():
            with self.transaction() as tx:
                if self.engine == "postgresql":
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (0x4B414452,))
                tx.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
                )
                version = name.split("_", 1)[0]
                if tx.one("SELECT version FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                tx.script(sql)
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, utcnow()),
                )
                applied.append(name)
        return applied

    def schema_version(self) -> str | None:
        try:
            row = self.one("SELECT MAX(version) AS v FROM schema_migrations")
        except Exception:
            return None
        return row["v"] if row else None


def migrations() -> list[tuple[str, str]]:
    """(file name, SQL) of server/migrations/NNNN_name.sql, in order."""
    folder = resources.files("kadrio_server") / "migrations"
    found = sorted(
        (entry.name, entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if _MIGRATION.match(entry.name)
    )
    return found


def _safe(url: str) -> str:
    """A URL fit for an error message: the password masked."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)
