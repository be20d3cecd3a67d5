"""The lifecycle event outbox in the registry (table ``outbox``, one row per event and destination).

``SqlOutbox`` is the unit of work's side: it stages an event's rows in the transaction of the
state change. ``OutboxStore`` is the dispatcher's side, one short transaction per call: claim due
rows under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, as the
job queue does) so that N dispatchers never send a row twice at once, then record each delivery's
result fenced by that lease (``leases.py``, shared with the job queue). Delivery is at least once: a dispatcher that dies between sending and
recording leaves a lease that expires, and the row is sent again (receivers de-duplicate on the
event id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import transaction
from adapters.registry.errors import all_errors_unavailable, translate_errors
from adapters.registry.leases import Leases
from adapters.registry.tables import outbox
from domain.lifecycle import LifecycleEvent, RetryPolicy
from domain.ports import Outbox

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    event_type: str
    tenant_id: str
    destination: str
    payload: dict[str, Any]
    attempts: int  # attempts made before this claim
    lease_owner: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    oldest_pending_created_at: datetime | None
    dead: int


class SqlOutbox(Outbox):
    """Stages one row per configured destination in the unit of work's transaction. With no
    destination configured, nothing is written (there is no one to tell)."""

    def __init__(self, tx: Any, destinations: Sequence[str], staged: list[LifecycleEvent]) -> None:
        self._tx = tx
        self._destinations = tuple(destinations)
        self._staged = staged

    async def add(self, event: LifecycleEvent) -> None:
        if not self._destinations:
            return
        payload = event.envelope()
        rows = [
            {
                "event_id": event.id,
                "event_type": event.type,
                "tenant_id": event.tenant_id,
                "destination": destination,
                "payload": payload,
                "occurred_at": event.occurred_at,
                "created_at": event.occurred_at,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": event.occurred_at,
            }
            for destination in self._destinations
        ]
        await self._tx.execute(outbox.insert().values(rows), write=True)
        self._staged.append(event)


def _row(m: Any) -> OutboxRow:
    return OutboxRow(
        id=m["id"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        tenant_id=m["tenant_id"],
        destination=m["destination"],
        payload=dict(m["payload"]),
        attempts=m["attempts"],
        lease_owner=m["lease_owner"],
        created_at=m["created_at"],
    )


# No fencing counter: a dispatcher's owner id is its own, and ``attempts`` counts deliveries.
LEASES = Leases(outbox)


def _delivered(now: datetime) -> dict[str, Any]:
    return {"state": DELIVERED, "attempts": outbox.c.attempts + 1, "delivered_at": now, "last_error": None}


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self, owner: str, now: datetime, lease_seconds: float, destinations: Sequence[str], limit: int
    ) -> list[OutboxRow]:
        """Lease up to ``limit`` due rows of ``destinations``: pending, ``next_attempt_at`` passed,
        not leased (or the lease expired), and each the oldest pending row of its tenant for its
        destination, so one tenant's events reach a destination in the order they were written."""
        if not destinations or limit < 1:
            return []
        o = outbox.alias("o")
        earlier = outbox.alias("earlier")
        candidates = LEASES.candidates(
            o,
            o.c.state == PENDING,
            o.c.next_attempt_at <= now,
            LEASES.free(now, o),
            o.c.destination.in_(list(destinations)),
            ~exists().where(
                earlier.c.destination == o.c.destination,
                earlier.c.tenant_id == o.c.tenant_id,
                earlier.c.state == PENDING,
                earlier.c.id < o.c.id,
            ),
            limit=limit,
        )
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                claimed = await LEASES.claim(conn.execute, candidates, owner=owner, now=now, lease_seconds=lease_seconds)
        return [_row(r._mapping) for r in claimed]

    def _held(self, row: OutboxRow) -> Any:
        return and_(LEASES.held(row.id, row.lease_owner), outbox.c.state == PENDING)

    async def delivered(self, row: OutboxRow, now: datetime) -> bool:
        """False when the lease was lost meanwhile (another dispatcher owns the row now)."""
        stmt = LEASES.release(self._held(row), _delivered(now))
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
        return bool(result.rowcount == 1)

    async def delivered_many(self, rows: Sequence[OutboxRow], now: datetime) -> set[int]:
        """``delivered`` for a batch of rows leased by one owner, in one transaction (one commit
        instead of one per row); the ids recorded (a row whose lease was lost is left alone)."""
        if not rows:
            return set()
        owners = {r.lease_owner for r in rows}
        if len(owners) != 1:
            raise ValueError("delivered_many takes the rows of one lease owner")
        held = and_(LEASES.held_many([r.id for r in rows], owners.pop()), outbox.c.state == PENDING)
        stmt = LEASES.release(held, _delivered(now)).returning(outbox.c.id)
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
                return {int(i) for (i,) in result}

    async def failed(
        self, row: OutboxRow, now: datetime, error: str, *, permanent: bool, policy: RetryPolicy
    ) -> str | None:
        """Record a failed attempt: the row is due again after the policy's backoff, or ``dead``
        when the failure is permanent or the attempts are used up. Returns the new state, or None
        when the lease was lost meanwhile. ``error`` must name no URL or secret."""
        attempts = row.attempts + 1
        dead = permanent or policy.gives_up(attempts)
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:MAX_ERROR_CHARS]}
        if dead:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = now + timedelta(seconds=policy.delay(attempts))
        stmt = LEASES.release(and_(self._held(row), outbox.c.attempts == row.attempts), values)
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
        if result.rowcount != 1:
            return None
        return DEAD if dead else PENDING

    async def release(self, rows: Sequence[OutboxRow]) -> None:
        """Give leased rows back untried (shutdown): due again at once, for any dispatcher."""
        if not rows:
            return
        stmt = LEASES.release(or_(*(self._held(r) for r in rows)))
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                await conn.execute(stmt)

    async def retry_dead(self, now: datetime, *, destination: str | None = None, event_id: str | None = None) -> int:
        """An operator's retry: dead rows (all, or of one destination / event) become pending and
        due now, with their attempts reset. Returns how many."""
        stmt = update(outbox).where(outbox.c.state == DEAD)
        if destination is not None:
            stmt = stmt.where(outbox.c.destination == destination)
        if event_id is not None:
            stmt = stmt.where(outbox.c.event_id == event_id)
        stmt = stmt.values(state=PENDING, attempts=0, next_attempt_at=now, lease_owner=None, lease_expires_at=None)
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
        return int(result.rowcount)

    async def rows(self, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Rows for an operator (``tenantctl events list``), newest first, without their payload."""
        stmt = select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.event_type,
            outbox.c.tenant_id,
            outbox.c.destination,
            outbox.c.state,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.last_error,
            outbox.c.created_at,
            outbox.c.delivered_at,
        )
        if state is not None:
            stmt = stmt.where(outbox.c.state == state)
        stmt = stmt.order_by(outbox.c.id.desc()).limit(limit)
        with translate_errors():
            async with transaction(self._engine, write=False) as conn:
                result = await conn.execute(stmt)
                return [dict(r._mapping) for r in result]


async def outbox_stats(engine: AsyncEngine, *, timeout_s: float = 5.0) -> OutboxStats:
    """Pending rows (how many, and when the oldest was written) and dead rows, for /metrics."""
    with all_errors_unavailable():
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            pending = (
                await conn.execute(select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.state == PENDING))
            ).one()
            dead = (await conn.execute(select(func.count()).where(outbox.c.state == DEAD))).scalar_one()
    return OutboxStats(int(pending[0]), pending[1], int(dead))


OnCommit = Callable[[list[LifecycleEvent]], None]
