"""Keys the service generates for itself and shares through the registry (table ``server_keys``).

``get_or_create`` races safely: the key is inserted with ``INSERT ... ON CONFLICT DO NOTHING`` and
then read back, so of several processes asking at once for a key nobody made yet, one inserts its
value and every one of them (on PostgreSQL and SQLite alike) gets that value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import transaction
from adapters.registry.errors import translate_errors
from adapters.registry.tables import server_keys as t


class ServerKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get_or_create(self, name: str, new_value: Callable[[], str], now: datetime) -> str:
        """The value of the key ``name``; ``new_value()`` becomes it if there is none yet."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                existing = (await conn.execute(select(t.c.value).where(t.c.name == name))).scalar_one_or_none()
                if existing is not None:
                    return str(existing)
                insert = dialect.insert(t).values(name=name, value=new_value(), created_at=now)
                await conn.execute(insert.on_conflict_do_nothing(index_elements=[t.c.name]))
                # Ours, or the one a concurrent process committed first (PostgreSQL's INSERT waited
                # for it; READ COMMITTED lets this statement see it).
                return str((await conn.execute(select(t.c.value).where(t.c.name == name))).scalar_one())
