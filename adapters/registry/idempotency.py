"""Idempotency-Key entries: which request a key was first used for, and the response it got.

An entry is ``in_flight`` from ``begin`` until the request finishes; then it is either ``done``
(``finish``: the response is kept for replays until ``expires_at``) or gone again (``abandon``:
nothing was stored, so the client may retry with the same key). ``begin`` races safely: the
entry is created with ``INSERT ... ON CONFLICT DO NOTHING``, so of two concurrent requests with
one key exactly one is ``Started`` on both PostgreSQL and SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.registry.engine import transaction
from adapters.registry.errors import translate_errors
from adapters.registry.tables import idempotency_keys as t

KEY_MAX_LENGTH = 255  # the column's length; the draft leaves it to the server
IN_FLIGHT, DONE = "in_flight", "done"
# A row that disappears between the conflicting INSERT and the SELECT (abandoned or purged by a
# concurrent request on PostgreSQL) makes begin() try again; past this many tries the key is
# reported as in flight, which is what a busy key is.
_BEGIN_TRIES = 3


@dataclass(frozen=True, slots=True)
class Started:
    """A new ``in_flight`` entry: this request runs. ``started_at`` fences ``finish``/``abandon``
    so that a request whose entry was taken over (see ``begin``) cannot overwrite its successor."""

    started_at: datetime


@dataclass(frozen=True, slots=True)
class Replay:
    """The key's request finished: answer with its response again."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for a different request (its fingerprint differs)."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """The key's request is still executing."""


Begin = Started | Replay | Mismatch | InFlight


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _insert(self) -> Any:
        return (postgresql if self._engine.dialect.name == "postgresql" else sqlite).insert(t)

    @staticmethod
    def _pk(api_key_id: str, key: str) -> Any:
        return and_(t.c.api_key_id == api_key_id, t.c.key == key)

    async def begin(
        self,
        api_key_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        ttl: timedelta,
        *,
        in_flight_timeout: timedelta | None = None,
    ) -> Begin:
        """Claim ``key`` for the request ``fingerprint`` describes, kept until ``now + ttl``.

        An entry that expired (``expires_at <= now``) is replaced as if there were none. So is an
        ``in_flight`` entry older than ``in_flight_timeout``: its request cannot still be running
        (the process that ran it died, or could not reach the registry to abandon it), and the
        key must not stay locked until it expires.
        """
        if not 1 <= len(key) <= KEY_MAX_LENGTH:
            raise ValueError(f"an idempotency key has 1 to {KEY_MAX_LENGTH} characters")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        fresh = {
            "fingerprint": fingerprint,
            "state": IN_FLIGHT,
            "response_status": None,
            "response_headers": None,
            "response_body": None,
            "created_at": now,
            "expires_at": now + ttl,
        }
        for _ in range(_BEGIN_TRIES):
            with translate_errors():
                async with transaction(self._engine, write=True) as conn:
                    outcome = await self._begin(conn, api_key_id, key, fingerprint, now, fresh, in_flight_timeout)
            if outcome is not None:
                return outcome
        return InFlight()

    async def _begin(
        self,
        conn: AsyncConnection,
        api_key_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        fresh: dict[str, Any],
        in_flight_timeout: timedelta | None,
    ) -> Begin | None:
        insert = (
            self._insert()
            .values(api_key_id=api_key_id, key=key, **fresh)
            .on_conflict_do_nothing(index_elements=[t.c.api_key_id, t.c.key])
        )
        if (await conn.execute(insert)).rowcount == 1:
            return Started(now)
        # PostgreSQL: the row lock makes concurrent replacers of one expired entry take turns
        # (the second then sees the first's fresh entry). SQLite holds its write lock already.
        current = (await conn.execute(select(t).where(self._pk(api_key_id, key)).with_for_update())).first()
        if current is None:
            return None
        if _replaceable(current, now, in_flight_timeout):
            await conn.execute(update(t).where(self._pk(api_key_id, key)).values(**fresh))
            return Started(now)
        m = current._mapping
        if m["fingerprint"] != fingerprint:
            return Mismatch()
        if m["state"] == IN_FLIGHT:
            return InFlight()
        return Replay(status=m["response_status"], headers=dict(m["response_headers"] or {}), body=m["response_body"])

    def _mine(self, api_key_id: str, key: str, started_at: datetime | None) -> Any:
        clause = and_(self._pk(api_key_id, key), t.c.state == IN_FLIGHT)
        return clause if started_at is None else and_(clause, t.c.created_at == started_at)

    async def finish(
        self,
        api_key_id: str,
        key: str,
        status: int,
        headers: dict[str, str],
        body: str,
        *,
        started_at: datetime | None = None,
    ) -> bool:
        """Store the response of the key's request (``in_flight`` -> ``done``). With
        ``started_at`` (from ``Started``) only if the entry is still the one that request began.
        False when there was no such entry."""
        stmt = (
            update(t)
            .where(self._mine(api_key_id, key, started_at))
            .values(state=DONE, response_status=status, response_headers=dict(headers), response_body=body)
        )
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
        return bool(result.rowcount == 1)

    async def abandon(self, api_key_id: str, key: str, *, started_at: datetime | None = None) -> bool:
        """Forget an ``in_flight`` entry whose request stored nothing, so that the key can be used
        again (the client's retry re-executes). False when there was no such entry."""
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(delete(t).where(self._mine(api_key_id, key, started_at)))
        return bool(result.rowcount == 1)

    async def purge_expired(self, now: datetime) -> int:
        """Delete every entry that expired at or before ``now``; returns how many."""
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(delete(t).where(t.c.expires_at <= now))
        return int(result.rowcount)


def _replaceable(row: Row[Any], now: datetime, in_flight_timeout: timedelta | None) -> bool:
    m = row._mapping
    if m["expires_at"] <= now:
        return True
    return m["state"] == IN_FLIGHT and in_flight_timeout is not None and m["created_at"] <= now - in_flight_timeout
