"""Throwaway databases for integration tests (PostgreSQL server from TEST_DATABASE_URL or a
container; SQLite files)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from adapters.registry.engine import make_engine, normalize_url


class PostgresUnavailable(Exception):
    """No PostgreSQL to test against; the message says why."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """A URL of a PostgreSQL database whose server we may create databases on.

    ``TEST_DATABASE_URL`` when set; otherwise a testcontainers PostgreSQL when a Docker engine
    answers; otherwise ``PostgresUnavailable``.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield normalize_url(url).render_as_string(hide_password=False)
        return
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as e:
        raise PostgresUnavailable(
            f"TEST_DATABASE_URL is not set and no Docker engine answers for testcontainers ({type(e).__name__})"
        ) from e
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.postgres import PostgresContainer
    with PostgresContainer("postgres:15-alpine", driver="asyncpg") as container:
        yield container.get_connection_url()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@asynccontextmanager
async def throwaway_database(server_url: str, *, template: str | None = None) -> AsyncIterator[str]:
    """Create a uniquely named database on ``server_url``'s server (optionally a copy of
    ``template``), yield its URL, drop it afterwards."""
    name = f"test_{uuid.uuid4().hex[:20]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            clause = f" TEMPLATE {_quote(template)}" if template else ""
            await conn.execute(text(f"CREATE DATABASE {_quote(name)}{clause}"))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                # WITH (FORCE) (PostgreSQL 13+): a test that leaked a connection still cleans up.
                await conn.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
    finally:
        await admin.dispose()


def database_name(url: str) -> str:
    name = make_url(url).database
    assert name is not None
    return name
