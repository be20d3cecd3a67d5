"""ServerKeyStore against real SQLite and PostgreSQL: one key per name, whoever asks first."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import make_engine
from adapters.registry.server_keys import ServerKeyStore

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def test_a_key_is_made_once_and_then_read_by_everyone(engine: AsyncEngine, database_url: str) -> None:
    store = ServerKeyStore(engine)
    made = itertools.count()
    first = await store.get_or_create("a", lambda: f"value-{next(made)}", T0)
    assert first == "value-0"
    assert await store.get_or_create("a", lambda: f"value-{next(made)}", T0) == first
    assert await store.get_or_create("b", lambda: "other", T0) == "other"  # one key per name

    # Processes racing for a key nobody made yet (each with its own engine, as replicas are):
    # every one gets the value that one of them stored.
    engines = [make_engine(database_url) for _ in range(6)]
    try:
        values = await asyncio.gather(
            *(ServerKeyStore(e).get_or_create("raced", lambda i=i: f"replica-{i}", T0) for i, e in enumerate(engines))
        )
    finally:
        for e in engines:
            await e.dispose()
    assert len(set(values)) == 1 and values[0].startswith("replica-"), values
    assert await store.get_or_create("raced", lambda: "late", T0) == values[0]
