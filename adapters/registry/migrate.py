"""Alembic, configured in code: no alembic.ini, works from an installed package.

``tenantctl db upgrade`` is ``asyncio.run(upgrade(url))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from adapters.registry.engine import begin, make_engine, normalize_url
from adapters.registry.errors import all_errors_unavailable


def script_location() -> Path:
    # __path__ rather than __file__: also right when an editable install maps the package as a
    # namespace package (no __file__).
    return Path(next(iter(migrations.__path__))).resolve()


def alembic_config(url: str | None = None) -> Config:
    """A Config for the ``migrations`` package. ``url`` (when given) is what env.py connects
    to; it is kept out of the ini options, where ``%`` would need escaping."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


async def _run(url: str, fn: Any, *args: Any) -> Any:
    cfg = alembic_config(url)
    engine = make_engine(url)
    try:
        with all_errors_unavailable():
            conn = await engine.connect()
        try:
            # One transaction around the whole run (PostgreSQL and SQLite both have
            # transactional DDL), holding SQLite's write lock from the start.
            await begin(conn, write=True)

            def run(sync_conn: Connection) -> Any:
                cfg.attributes["connection"] = sync_conn
                return fn(cfg, sync_conn, *args)

            result = await conn.run_sync(run)
            await conn.commit()
            return result
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, lambda cfg, _conn, rev: command.upgrade(cfg, rev), revision)


async def downgrade(url: str, revision: str) -> None:
    await _run(url, lambda cfg, _conn, rev: command.downgrade(cfg, rev), revision)


async def current_revision(url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    return await _run(url, lambda _cfg, conn: MigrationContext.configure(conn).get_current_revision())  # type: ignore[no-any-return]


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def redact(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    return normalize_url(url).render_as_string(hide_password=True)
