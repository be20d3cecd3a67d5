"""One lease primitive for the registry's queues (the job queue and the event outbox).

A leased table has an integer ``id`` and two lease columns: who holds the row and until when.
A row is *free* when nobody holds it or the lease has expired; a claim takes up to ``n`` free
rows for one owner and a number of seconds. ``Leases`` builds the statements from the columns;
each queue adds its own rules (which states are runnable, per-tenant ordering) as predicates.

Fencing: with a ``fence`` column (a counter every claim bumps), a holder is identified by
(owner, fence value), so a holder whose lease was taken over cannot extend, complete or release
the row even when the new holder has the same owner id. Without one, the owner alone fences.

A claim must run in a writing transaction (``begin(conn, write=True)``): concurrent claimers skip
each other's candidates on PostgreSQL (``FOR UPDATE SKIP LOCKED``), and on SQLite, which renders
no ``FOR UPDATE``, ``BEGIN IMMEDIATE`` serializes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, Update, and_, or_, select, update
from sqlalchemy.sql import Executable
from sqlalchemy.sql.expression import FromClause

# Runs one statement in the caller's transaction (a ``Transaction`` or an ``AsyncConnection``).
Execute = Callable[[Executable], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Leases:
    table: Table
    owner: str = "lease_owner"
    expires: str = "lease_expires_at"
    fence: str | None = None

    def _c(self, name: str, of: FromClause | None) -> Any:
        return (self.table if of is None else of).c[name]

    def free(self, now: datetime, of: FromClause | None = None) -> ColumnElement[bool]:
        """Nobody holds the row, or its lease has expired. ``of``: an alias of the table."""
        expires = self._c(self.expires, of)
        return or_(expires.is_(None), expires < now)

    def live(self, now: datetime, of: FromClause | None = None) -> ColumnElement[bool]:
        """Someone holds the row and the lease has not expired (the negation of ``free``)."""
        live: ColumnElement[bool] = self._c(self.expires, of) >= now
        return live

    def candidates(self, of: FromClause, *where: ColumnElement[bool], limit: int) -> Select[Any]:
        """The ids of up to ``limit`` rows of ``of`` (an alias of the table) matching ``where``,
        oldest first, locked for the claim. Include ``free(now, of)`` in ``where``."""
        return (
            select(of.c.id)
            .where(*where)
            .order_by(of.c.id)
            .limit(limit)
            # PostgreSQL: concurrent claimers skip each other's candidates instead of queueing on
            # them, and the rows stay locked until the transaction ends. SQLite renders no FOR
            # UPDATE: the claim runs under BEGIN IMMEDIATE.
            .with_for_update(skip_locked=True, of=of)
        )

    async def claim(
        self,
        execute: Execute,
        candidates: Select[Any],
        *,
        owner: str,
        now: datetime,
        lease_seconds: float,
        values: dict[str, Any] | None = None,
    ) -> list[Row[Any]]:
        """Lease the rows ``candidates`` selects to ``owner`` until ``now + lease_seconds``,
        bumping the fence, and writing ``values`` with the lease; the rows claimed, by id."""
        # Two statements in one transaction, not UPDATE ... WHERE id IN (that SELECT):
        # PostgreSQL may run such a subquery again per row, and each run of a SKIP LOCKED LIMIT n
        # query can pick other rows (leasing more than n). The chosen rows stay locked until the
        # commit.
        ids = [int(i) for (i,) in await execute(candidates)]
        if not ids:
            return []
        lease: dict[str, Any] = {self.owner: owner, self.expires: now + timedelta(seconds=lease_seconds)}
        if self.fence is not None:
            lease[self.fence] = self.table.c[self.fence] + 1
        stmt = update(self.table).where(self.table.c.id.in_(ids)).values({**(values or {}), **lease}).returning(*self.table.c)
        return sorted(await execute(stmt), key=lambda row: int(row.id))

    def held(self, row_id: int, owner: str, fence: int | None = None) -> ColumnElement[bool]:
        """The row ``row_id`` is still held by this lease (expired or not, as long as nobody took
        it over). On a fenced table, ``fence`` is the counter's value the claim returned."""
        return self.held_many([row_id], owner, fence)

    def held_many(self, row_ids: Sequence[int], owner: str, fence: int | None = None) -> ColumnElement[bool]:
        """``held`` for rows one claim leased to ``owner`` (on a fenced table, all with ``fence``)."""
        if (fence is None) != (self.fence is None):
            raise ValueError(f"{self.table.name}: a lease is held with its fence value if and only if the table has one")
        t = self.table
        id_matches = t.c.id == row_ids[0] if len(row_ids) == 1 else t.c.id.in_(list(row_ids))
        held = and_(id_matches, t.c[self.owner] == owner)
        if self.fence is not None:
            held = and_(held, t.c[self.fence] == fence)
        return held

    def extend(
        self, where: ColumnElement[bool], now: datetime, lease_seconds: float, values: dict[str, Any] | None = None
    ) -> Update:
        """Renew the lease of the rows ``where`` selects (build it from ``held``) until
        ``now + lease_seconds``; its row count says whether the lease was still held."""
        lease = {self.expires: now + timedelta(seconds=lease_seconds)}
        return update(self.table).where(where).values({**(values or {}), **lease})

    def release(
        self, where: ColumnElement[bool], values: dict[str, Any] | None = None, *, keep_owner: bool = False
    ) -> Update:
        """End the lease of the rows ``where`` selects (build it from ``held``), writing ``values``
        with it (the row's next state); its row count says whether the lease was still held.
        ``keep_owner``: the row keeps its last holder's id (a finished job records who ran it);
        it is free all the same, since only the expiry decides that."""
        ended: dict[str, Any] = {self.expires: None}
        if not keep_owner:
            ended[self.owner] = None
        return update(self.table).where(where).values({**(values or {}), **ended})
