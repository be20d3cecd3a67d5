"""The lease primitive (adapters/registry/leases.py) on its own table, on SQLite and PostgreSQL:
claims, expiry and takeover, fencing, and concurrent claimers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from adapters.registry.engine import begin, make_engine, transaction
from adapters.registry.leases import Leases
from adapters.registry.tables import BigIntId, UtcDateTime
from tests.integration.databases import throwaway_database

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
LEASE_S = 30

metadata = MetaData()
items = Table(
    "leased_items",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
)
FENCED = Leases(items, fence="attempts")
UNFENCED = Leases(items)


async def with_items(url: str, count: int, **engine_kwargs: Any) -> AsyncEngine:
    engine = make_engine(url, **engine_kwargs)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(items), [{} for _ in range(count)])
    return engine


@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await with_items(empty_database_url, 5)
    try:
        yield engine
    finally:
        await engine.dispose()


async def claim_in(conn: AsyncConnection, leases: Leases, owner: str, now: datetime, limit: int) -> list[Any]:
    t = items.alias("t")
    candidates = leases.candidates(t, leases.free(now, t), limit=limit)
    return await leases.claim(conn.execute, candidates, owner=owner, now=now, lease_seconds=LEASE_S)


async def claim(engine: AsyncEngine, leases: Leases, owner: str, now: datetime = T0, limit: int = 10) -> list[Any]:
    async with transaction(engine, write=True) as conn:
        return await claim_in(conn, leases, owner, now, limit)


async def rowcount(engine: AsyncEngine, stmt: Any) -> int:
    async with transaction(engine, write=True) as conn:
        return int((await conn.execute(stmt)).rowcount)


async def state(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with transaction(engine, write=False) as conn:
        result = await conn.execute(select(items.c.id, items.c.lease_owner, items.c.attempts).order_by(items.c.id))
        return [tuple(r) for r in result]


async def test_a_claim_takes_free_rows_oldest_first_up_to_its_limit_and_a_live_lease_is_not_claimed_again(
    engine: AsyncEngine,
) -> None:
    first = await claim(engine, FENCED, "a", limit=3)
    assert [r.id for r in first] == [1, 2, 3]
    assert all((r.lease_owner, r.lease_expires_at, r.attempts) == ("a", T0 + timedelta(seconds=LEASE_S), 1) for r in first)

    # Only the two rows nobody holds are left, even just before the first lease ends.
    second = await claim(engine, FENCED, "b", T0 + timedelta(seconds=LEASE_S - 1))
    assert [r.id for r in second] == [4, 5]
    assert await claim(engine, FENCED, "c", T0 + timedelta(seconds=LEASE_S - 1)) == []
    assert await state(engine) == [(1, "a", 1), (2, "a", 1), (3, "a", 1), (4, "b", 1), (5, "b", 1)]


async def test_an_expired_lease_is_taken_over_and_fences_out_its_old_holder(engine: AsyncEngine) -> None:
    (old,) = await claim(engine, FENCED, "a", limit=1)
    later = T0 + timedelta(seconds=LEASE_S + 1)
    (new,) = await claim(engine, FENCED, "b", later, limit=1)
    assert (new.id, new.lease_owner, new.attempts) == (old.id, "b", 2)

    stale = FENCED.held(old.id, old.lease_owner, old.attempts)
    assert await rowcount(engine, FENCED.extend(stale, later, LEASE_S)) == 0
    assert await rowcount(engine, FENCED.release(stale)) == 0
    current = FENCED.held(new.id, new.lease_owner, new.attempts)
    assert await rowcount(engine, FENCED.extend(current, later, LEASE_S)) == 1
    assert (await state(engine))[0] == (old.id, "b", 2)

    # The same owner id claiming again after expiry: the older handle is fenced by its counter.
    much_later = later + timedelta(seconds=2 * LEASE_S)
    (again,) = await claim(engine, FENCED, "b", much_later, limit=1)
    assert (again.id, again.attempts) == (old.id, 3)
    assert await rowcount(engine, FENCED.extend(current, much_later, LEASE_S)) == 0
    assert await rowcount(engine, FENCED.release(FENCED.held(again.id, "b", 3))) == 1
    assert (await state(engine))[0] == (old.id, None, 3)


async def test_an_extended_lease_stays_live_and_a_released_row_is_free_at_once(engine: AsyncEngine) -> None:
    (row,) = await claim(engine, FENCED, "a", limit=1)
    held = FENCED.held(row.id, "a", row.attempts)
    assert await rowcount(engine, FENCED.extend(held, T0 + timedelta(seconds=20), LEASE_S)) == 1
    # Live until T0 + 50 s: not claimable at T0 + 40 s (the other rows are).
    assert row.id not in [r.id for r in await claim(engine, FENCED, "b", T0 + timedelta(seconds=40))]

    # Ended but keeping its last holder's id: free all the same.
    assert await rowcount(engine, FENCED.release(held, keep_owner=True)) == 1
    assert (await state(engine))[0] == (row.id, "a", 1)
    (again,) = await claim(engine, FENCED, "c", T0 + timedelta(seconds=41))
    assert (again.id, again.lease_owner, again.attempts) == (row.id, "c", 2)


async def test_without_a_fence_the_owner_alone_holds_the_lease(engine: AsyncEngine) -> None:
    (row,) = await claim(engine, UNFENCED, "a", limit=1)
    assert (row.lease_owner, row.attempts) == ("a", 0)  # nothing to bump
    assert await rowcount(engine, UNFENCED.extend(UNFENCED.held(row.id, "a"), T0, LEASE_S)) == 1

    later = T0 + timedelta(seconds=LEASE_S + 1)
    (new,) = await claim(engine, UNFENCED, "b", later, limit=1)
    assert new.id == row.id
    assert await rowcount(engine, UNFENCED.release(UNFENCED.held(row.id, "a"))) == 0
    assert await rowcount(engine, UNFENCED.release(UNFENCED.held_many([1, 2], "b"))) == 1
    (freed,) = await claim(engine, UNFENCED, "c", later, limit=1)
    assert freed.id == row.id

    with pytest.raises(ValueError, match="fence"):
        UNFENCED.held(row.id, "c", 1)
    with pytest.raises(ValueError, match="fence"):
        FENCED.held(row.id, "c")


async def test_concurrent_claimers_never_share_a_row(empty_database_url: str) -> None:
    engine = await with_items(empty_database_url, 20)
    try:
        batches = await asyncio.gather(*(claim(engine, FENCED, f"w{i}", limit=3) for i in range(8)))
        rest = await claim(engine, FENCED, "late", limit=20)
        ids = [r.id for batch in [*batches, rest] for r in batch]
        assert sorted(ids) == list(range(1, 21))
        assert all(r.attempts == 1 for batch in batches for r in batch)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_on_postgresql_a_claimer_skips_rows_another_claim_has_locked(postgres_server_url: str) -> None:
    async with throwaway_database(postgres_server_url) as url:
        engine = await with_items(url, 4, poolclass=NullPool)
        try:
            async with engine.connect() as first, engine.connect() as second:
                await begin(first, write=True)
                assert [r.id for r in await claim_in(first, FENCED, "a", T0, 2)] == [1, 2]

                # Rows 1 and 2 are free by their lease columns in any other transaction, but locked
                # until the first claim ends: the second passes them instead of waiting on them
                # (were it to wait, the lock timeout would fail it: the first is still open).
                await begin(second, write=True)
                await second.execute(text("SET LOCAL lock_timeout = '5s'"))
                assert [r.id for r in await claim_in(second, FENCED, "b", T0, 2)] == [3, 4]
                await second.commit()

                await first.rollback()  # the first claim never happened: its rows are free again
            assert [r.id for r in await claim(engine, FENCED, "c")] == [1, 2]
        finally:
            await engine.dispose()
