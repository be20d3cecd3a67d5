"""IdempotencyStore against real SQLite and PostgreSQL: the entry's life cycle, expiry, scoping,
fencing, purging, and concurrent begin() calls racing for one key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import make_engine
from adapters.registry.idempotency import IdempotencyStore, InFlight, Mismatch, Replay, Started
from adapters.registry.tables import idempotency_keys
from domain.errors import RegistryUnavailable

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TTL = timedelta(hours=24)
API_KEY = "key_a"
FP_A, FP_B = "a" * 64, "b" * 64
BODY = '{"tenant_id":"acme","status":"provisioning","display_name":"Äcme ☃"}'
HEADERS = {"Content-Type": "application/json", "Location": "/v1/tenants/acme"}


def new_key() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def store(engine: AsyncEngine) -> IdempotencyStore:
    return IdempotencyStore(engine)


async def rows(engine: AsyncEngine, key: str) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
        return [dict(row._mapping) for row in result]


async def test_first_use_runs_then_replays_the_stored_response(store: IdempotencyStore, engine: AsyncEngine) -> None:
    key = new_key()
    assert await store.begin(API_KEY, key, FP_A, T0, TTL) == Started(T0)
    (row,) = await rows(engine, key)
    assert (row["state"], row["fingerprint"], row["expires_at"]) == ("in_flight", FP_A, T0 + TTL)

    assert await store.finish(API_KEY, key, 202, HEADERS, BODY, started_at=T0) is True
    later = T0 + timedelta(hours=23)
    replay = await store.begin(API_KEY, key, FP_A, later, TTL)
    assert replay == Replay(status=202, headers=HEADERS, body=BODY)
    assert isinstance(replay, Replay) and replay.body.encode() == BODY.encode()  # the very bytes
    assert await store.begin(API_KEY, key, FP_B, later, TTL) == Mismatch()
    # Replays change nothing: the entry still expires a TTL after its first use.
    (row,) = await rows(engine, key)
    assert (row["state"], row["response_status"], row["expires_at"]) == ("done", 202, T0 + TTL)


async def test_a_key_in_flight_is_reported_as_such_or_as_a_mismatch(store: IdempotencyStore) -> None:
    key = new_key()
    assert isinstance(await store.begin(API_KEY, key, FP_A, T0, TTL), Started)
    assert await store.begin(API_KEY, key, FP_A, T0 + timedelta(seconds=1), TTL) == InFlight()
    assert await store.begin(API_KEY, key, FP_B, T0 + timedelta(seconds=1), TTL) == Mismatch()


async def test_abandon_frees_the_key_and_leaves_finished_entries_alone(store: IdempotencyStore, engine: AsyncEngine) -> None:
    key = new_key()
    await store.begin(API_KEY, key, FP_A, T0, TTL)
    assert await store.abandon(API_KEY, key, started_at=T0) is True
    assert await rows(engine, key) == []
    assert await store.abandon(API_KEY, key) is False
    # The retry runs, under the same or another request.
    later = T0 + timedelta(seconds=5)
    assert await store.begin(API_KEY, key, FP_B, later, TTL) == Started(later)
    await store.finish(API_KEY, key, 201, {}, "{}", started_at=later)
    assert await store.abandon(API_KEY, key) is False  # only in_flight entries are abandoned
    assert await store.finish(API_KEY, key, 500, {}, "x") is False  # nor finished twice
    assert await store.begin(API_KEY, key, FP_B, later, TTL) == Replay(201, {}, "{}")


async def test_keys_are_scoped_to_the_api_key(store: IdempotencyStore) -> None:
    key = new_key()
    await store.begin("key_a", key, FP_A, T0, TTL)
    await store.finish("key_a", key, 202, {}, "first")
    assert await store.begin("key_b", key, FP_A, T0, TTL) == Started(T0)
    assert await store.begin("key_b", key, FP_A, T0, TTL) == InFlight()  # key_b's own entry
    assert await store.begin("key_a", key, FP_A, T0, TTL) == Replay(202, {}, "first")


async def test_an_expired_entry_is_replaced_as_if_new(store: IdempotencyStore, engine: AsyncEngine) -> None:
    key = new_key()
    ttl = timedelta(hours=1)
    await store.begin(API_KEY, key, FP_A, T0, ttl)
    await store.finish(API_KEY, key, 202, HEADERS, BODY)
    just_before = T0 + ttl - timedelta(microseconds=1)
    assert await store.begin(API_KEY, key, FP_B, just_before, ttl) == Mismatch()
    expiry = T0 + ttl  # expires_at <= now: expired
    assert await store.begin(API_KEY, key, FP_B, expiry, ttl) == Started(expiry)
    (row,) = await rows(engine, key)
    assert row["state"] == "in_flight" and row["fingerprint"] == FP_B and row["response_body"] is None
    assert row["created_at"] == expiry and row["expires_at"] == expiry + ttl


async def test_an_in_flight_entry_past_its_timeout_is_taken_over_and_its_old_request_fenced(
    store: IdempotencyStore,
) -> None:
    key = new_key()
    timeout = timedelta(minutes=5)
    await store.begin(API_KEY, key, FP_A, T0, TTL, in_flight_timeout=timeout)
    assert await store.begin(API_KEY, key, FP_A, T0 + timeout - timedelta(seconds=1), TTL, in_flight_timeout=timeout) == InFlight()
    later = T0 + timeout
    assert await store.begin(API_KEY, key, FP_A, later, TTL, in_flight_timeout=timeout) == Started(later)
    # The first request, had it been alive after all, can no longer finish or abandon the entry.
    assert await store.finish(API_KEY, key, 202, {}, "old", started_at=T0) is False
    assert await store.abandon(API_KEY, key, started_at=T0) is False
    assert await store.finish(API_KEY, key, 202, {}, "new", started_at=later) is True
    assert await store.begin(API_KEY, key, FP_A, later, TTL, in_flight_timeout=timeout) == Replay(202, {}, "new")
    # A finished entry is never taken over before it expires, whatever the timeout.
    much_later = later + timedelta(hours=1)
    assert await store.begin(API_KEY, key, FP_A, much_later, TTL, in_flight_timeout=timeout) == Replay(202, {}, "new")


async def test_purge_deletes_exactly_the_expired_entries(store: IdempotencyStore, engine: AsyncEngine) -> None:
    marker = new_key()
    keys = {f"{marker}-{i}": T0 + timedelta(minutes=i) for i in range(4)}
    for key, now in keys.items():
        await store.begin(API_KEY, key, FP_A, now, timedelta(hours=1))
    await store.finish(API_KEY, f"{marker}-0", 202, {}, "{}")
    # Expired: -0 (done) and -1 (in flight) expire at T0+60 and T0+61 minutes.
    assert await store.purge_expired(T0 + timedelta(minutes=61)) == 2
    remaining = {key for key in keys if await rows(engine, key)}
    assert remaining == {f"{marker}-2", f"{marker}-3"}
    assert await store.purge_expired(T0 + timedelta(minutes=61)) == 0


async def test_concurrent_begins_for_one_key_start_exactly_one(store: IdempotencyStore) -> None:
    key = new_key()
    results = await asyncio.gather(*(store.begin(API_KEY, key, FP_A, T0, TTL) for _ in range(12)))
    assert sum(isinstance(r, Started) for r in results) == 1, results
    assert all(isinstance(r, Started | InFlight) for r in results), results


async def test_concurrent_begins_on_an_expired_entry_start_exactly_one(store: IdempotencyStore) -> None:
    key = new_key()
    await store.begin(API_KEY, key, FP_A, T0, timedelta(hours=1))
    await store.finish(API_KEY, key, 202, {}, "{}")
    later = T0 + timedelta(hours=2)
    results = await asyncio.gather(*(store.begin(API_KEY, key, FP_B, later, TTL) for _ in range(12)))
    assert sum(isinstance(r, Started) for r in results) == 1, results
    assert all(isinstance(r, Started | InFlight) for r in results), results


async def test_keys_are_checked_and_naive_times_refused(store: IdempotencyStore) -> None:
    with pytest.raises(ValueError):
        await store.begin(API_KEY, "", FP_A, T0, TTL)
    with pytest.raises(ValueError):
        await store.begin(API_KEY, "k" * 256, FP_A, T0, TTL)
    with pytest.raises(ValueError):
        await store.begin(API_KEY, new_key(), FP_A, T0, timedelta(0))
    assert isinstance(await store.begin(API_KEY, "k" * 255, FP_A, T0, TTL), Started | InFlight)
    with pytest.raises(Exception, match="naive datetime"):
        await store.begin(API_KEY, new_key(), FP_A, datetime(2025, 3, 1, 12, 0), TTL)


async def test_an_unreachable_registry_is_registry_unavailable() -> None:
    engine = make_engine("postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:1/x")
    store = IdempotencyStore(engine)
    try:
        for call in (
            store.begin(API_KEY, "k", FP_A, T0, TTL),
            store.finish(API_KEY, "k", 202, {}, "{}"),
            store.abandon(API_KEY, "k"),
            store.purge_expired(T0),
        ):
            with pytest.raises(RegistryUnavailable) as error:
                await call
            assert "s3cret-pw" not in str(error.value)
    finally:
        await engine.dispose()
