"""Database fixtures: every registry test runs on SQLite and on PostgreSQL.

``database_url`` is a private database already migrated to head (a copy of a template migrated
once per session), so job-queue tests, which see every job in the database, do not see each
other's. ``empty_database_url`` is a private database with nothing in it (migration tests).
PostgreSQL comes from ``TEST_DATABASE_URL`` or testcontainers; without either, the PostgreSQL
variants skip with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from adapters.registry.sql import SqlUnitOfWorkFactory
from tests.integration.databases import PostgresUnavailable, database_name, postgres_server, throwaway_database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL unavailable: {e}")


@pytest.fixture(scope="session")
async def postgres_template(postgres_server_url: str) -> AsyncIterator[str]:
    """Name of a database migrated to head; tests get copies of it (CREATE DATABASE ... TEMPLATE)."""
    async with throwaway_database(postgres_server_url) as url:
        await upgrade(url)
        yield database_name(url)


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "registry.db"
    await upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@dataclass(frozen=True)
class Backend:
    name: str
    server_url: str | None = None  # PostgreSQL: where throwaway databases are created
    template: str | Path | None = None  # migrated to head: a database name or an SQLite file


# The parametrized fixtures are synchronous so that they can pull in the session fixtures (and
# their skips) with getfixturevalue; the async fixtures below only create the databases.
@pytest.fixture(params=BACKENDS)
def migrated_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", template=request.getfixturevalue("sqlite_template"))
    return Backend(
        "postgres",
        server_url=request.getfixturevalue("postgres_server_url"),
        template=request.getfixturevalue("postgres_template"),
    )


@pytest.fixture(params=BACKENDS)
def empty_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgres", server_url=request.getfixturevalue("postgres_server_url"))


@pytest.fixture
async def database_url(migrated_backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    if migrated_backend.name == "sqlite":
        assert isinstance(migrated_backend.template, Path)
        path = tmp_path / "registry.db"
        shutil.copyfile(migrated_backend.template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert migrated_backend.server_url is not None and isinstance(migrated_backend.template, str)
    async with throwaway_database(migrated_backend.server_url, template=migrated_backend.template) as url:
        yield url


@pytest.fixture
async def empty_database_url(empty_backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    if empty_backend.name == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'registry.db'}"
        return
    assert empty_backend.server_url is not None
    async with throwaway_database(empty_backend.server_url) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)
