"""The in-process cache of verified API keys: what it keeps, for how long, and what it forgets."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from adapters.registry.api_keys import ApiKeyRecord, hash_key
from service.key_cache import VerifiedKeyCache

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def record(key_id: str = "key_a", **changes: object) -> ApiKeyRecord:
    base = ApiKeyRecord(
        id=key_id, name="ci", prefix="tpk_abcdef", key_hash=hash_key(key_id), scopes=("tenants:read",), created_at=NOW
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_verified_key_is_trusted_for_the_ttl_from_its_registry_read_and_no_longer() -> None:
    clock = Clock()
    cache = VerifiedKeyCache(5.0, clock=clock)
    cache.put("h", record(), NOW)
    clock.t += 4.9
    assert cache.get("h") == record()
    cache.used("h", NOW)  # a recorded use does not extend the entry's life
    assert cache.get("h") == record(last_used_at=NOW)
    clock.t += 0.1
    assert cache.get("h") is None and len(cache) == 0


def test_revoked_expired_and_unknown_keys_are_never_kept() -> None:
    cache = VerifiedKeyCache(5.0, clock=Clock())
    cache.put("revoked", record(revoked_at=NOW), NOW)
    cache.put("expired", record(expires_at=NOW), NOW)
    assert cache.get("revoked") is None and cache.get("expired") is None and cache.get("unknown") is None
    assert len(cache) == 0


def test_forget_drops_a_revoked_key_at_once() -> None:
    cache = VerifiedKeyCache(5.0, clock=Clock())
    cache.put("a", record("key_a"), NOW)
    cache.put("b", record("key_b"), NOW)
    cache.forget("key_a")
    assert cache.get("a") is None and cache.get("b") == record("key_b")


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache = VerifiedKeyCache(0.0, clock=Clock())
    cache.put("h", record(), NOW)
    assert cache.get("h") is None and len(cache) == 0


def test_the_least_recently_used_key_goes_first_when_full() -> None:
    cache = VerifiedKeyCache(60.0, max_entries=2, clock=Clock())
    cache.put("a", record("key_a"), NOW)
    cache.put("b", record("key_b"), NOW)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", record("key_c"), NOW)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2


def test_a_cached_key_still_expires_on_time() -> None:
    """Expiry is checked by the authentication against the cached record on every request; the
    cache hands out the record with its expires_at, untouched."""
    cache = VerifiedKeyCache(60.0, clock=Clock())
    soon = NOW + timedelta(seconds=1)
    cache.put("h", record(expires_at=soon), NOW)
    assert cache.get("h") == record(expires_at=soon)


async def test_concurrent_lookups_of_one_key_share_one_registry_read() -> None:
    cache = VerifiedKeyCache(5.0, clock=Clock())
    reads = 0
    gate = asyncio.Event()

    async def read() -> ApiKeyRecord | None:
        nonlocal reads
        reads += 1
        await gate.wait()
        return record()

    waiting = [asyncio.ensure_future(cache.lookup("h", read, NOW)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [record()] * 10
    assert reads == 1
    assert await cache.lookup("h", read, NOW) == record() and reads == 1  # kept


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    cache = VerifiedKeyCache(5.0, clock=Clock())
    reads = 0

    async def read() -> ApiKeyRecord | None:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0)
        raise RuntimeError("registry down")

    results = await asyncio.gather(*(cache.lookup("h", read, NOW) for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError] * 3 and reads == 1
    unknown = await cache.lookup("h", _none, NOW)
    assert unknown is None and len(cache) == 0


async def _none() -> ApiKeyRecord | None:
    return None


async def test_a_read_under_way_when_the_key_is_revoked_here_is_not_kept() -> None:
    cache = VerifiedKeyCache(5.0, clock=Clock())
    gate = asyncio.Event()

    async def read() -> ApiKeyRecord | None:
        await gate.wait()
        return record()  # read before the revocation committed: still active

    lookup = asyncio.ensure_future(cache.lookup("h", read, NOW))
    await asyncio.sleep(0)
    cache.forget("key_a")
    gate.set()
    assert await lookup == record()  # this request was already under way
    assert cache.get("h") is None  # but the next one reads the registry again
