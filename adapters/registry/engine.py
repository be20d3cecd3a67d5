"""Engine construction, SQLite transaction control, and the readiness ping."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from adapters.registry.errors import all_errors_unavailable

# Execution option read by the SQLite "begin" listener: "DEFERRED" (default) or "IMMEDIATE".
SQLITE_BEGIN = "x_sqlite_begin"

SQLITE_BUSY_TIMEOUT_MS = 5000

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def normalize_url(url: str | URL) -> URL:
    """``sqlite:///x.db`` and ``postgresql://...`` get their async drivers."""
    u = make_url(url)
    if u.drivername in _DRIVERS:
        u = u.set(drivername=_DRIVERS[u.drivername])
    return u


def _sqlite_file(u: URL) -> Path | None:
    db = u.database
    if not db or db == ":memory:" or db.startswith("file:") or u.query.get("mode") == "memory":
        return None
    return Path(db).expanduser()


# SQLite's side files: write-ahead log, its shared-memory index, the rollback journal.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _private_sqlite_file(path: Path) -> None:
    """The registry holds API key hashes and tenant data: owner-only.

    A directory created here is 0700 (an existing one is left as its owner made it: it may be a
    home or a shared directory). The file is created 0600 before SQLite opens it, and SQLite
    gives its -wal, -shm and -journal files the mode of the database file. An existing file of
    ours (and its side files) loses any permission for other users; group permissions on it are
    the operator's choice, so they are kept.
    """
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        pass  # it exists, or cannot be made: SQLite reports the latter when it connects
    for file in (path, *(path.with_name(path.name + side) for side in _SQLITE_SIDE_FILES)):
        try:
            st = file.stat()
            if st.st_uid == os.getuid() and st.st_mode & stat.S_IRWXO:
                file.chmod(stat.S_IMODE(st.st_mode) & ~stat.S_IRWXO)
        except OSError:
            continue


def make_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An engine for the registry.

    SQLite: the file private to its owner (``_private_sqlite_file``); WAL, a 5 s busy timeout and
    foreign keys on every connection; the driver's implicit
    transaction handling is turned off and ``BEGIN`` is emitted by us, so a transaction can be
    started ``IMMEDIATE`` (taking the write lock up front) when it will write.
    PostgreSQL: a connection that sat in the pool for more than ``PING_IDLE_S`` is pinged on
    checkout (and replaced if dead), so a restarted server costs no failed request, while one
    reused at once under load costs no extra round trips (SQLAlchemy's ``pool_pre_ping`` would
    spend three, BEGIN, a query and ROLLBACK, on every checkout).
    """
    u = normalize_url(url)
    # A statement's parameters (API key hashes among them) stay out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if u.get_backend_name() == "sqlite":
        path = _sqlite_file(u)
        if path is not None:
            _private_sqlite_file(path)
        elif "poolclass" not in kwargs:
            # An in-memory database lives and dies with its one connection.
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_async_engine(u, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(u, **kwargs)
    if not kwargs.get("pool_pre_ping") and engine.dialect.name == "postgresql":
        _ping_idle_connections(engine)
    return engine


# A connection back in the pool for longer than this is pinged before it is used again.
PING_IDLE_S = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["x_checked_in_at"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("x_checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at <= PING_IDLE_S:
            return  # just connected, or just used
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another one.
            raise DisconnectionError(f"idle connection failed its ping: {type(exc).__name__}") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling is off; see the "begin" listener.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ValueError(f"{SQLITE_BEGIN} must be DEFERRED or IMMEDIATE, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


async def begin(conn: AsyncConnection, *, write: bool) -> None:
    """Start a transaction on ``conn``; on SQLite a writing one takes the write lock first.

    In WAL mode a transaction that read first and writes later fails with "database is locked"
    (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not retry) if another writer committed
    in between; taking the lock with ``BEGIN IMMEDIATE`` makes it wait its turn instead.
    """
    if conn.dialect.name == "sqlite":
        await conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE" if write else "DEFERRED"})
    await conn.begin()


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` with the SQLite lock mode chosen; commits on success."""
    with all_errors_unavailable():
        conn = await engine.connect()
    try:
        await begin(conn, write=write)
        yield conn
        await conn.commit()
    finally:
        await conn.close()


async def ping(engine: AsyncEngine, *, timeout_s: float = 5.0) -> None:
    """Readiness: ``SELECT 1``; raises ``RegistryUnavailable`` when that fails or hangs."""
    with all_errors_unavailable():
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
