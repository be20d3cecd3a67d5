"""The registry on SQLAlchemy Core: tenant repository, job queue and unit of work.

Both repositories share one ``AsyncConnection`` through a ``Transaction``, which starts the
database transaction lazily at the first statement: on SQLite a transaction whose first statement
writes or locks (``get(for_update=True)``, ``claim``, ``add``, ``save``, ``enqueue``) begins
``IMMEDIATE``, taking the database's write lock up front, so read-modify-write is serialized
rather than failing on commit. Start a transaction that will write with one of those calls (a
plain ``get`` first makes it a reader; a later write then fails with ``RegistryUnavailable``
("database is locked") when another writer got in between, never with a lost update).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, exists, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from adapters.registry.api_keys import ApiKeyRecord, ApiKeyStore
from adapters.registry.engine import begin, make_engine, ping
from adapters.registry.errors import all_errors_unavailable, translate_errors
from adapters.registry.leases import Leases
from adapters.registry.outbox import OnCommit, SqlOutbox
from adapters.registry.tables import audit_events, jobs, tenants
from domain.audit import AuditEvent
from domain.errors import TenantConflict, TenantNotFound
from domain.lifecycle import LifecycleEvent
from domain.ports import AuditLog, Job, JobQueue, TenantRepository, UnitOfWork, UnitOfWorkFactory
from domain.tenant import Cell, JobKind, LastError, SettingsStatus, Tenant, TenantSpec, TenantStatus
from domain.tenant_settings import settings_from_json

__all__ = [
    "ApiKeyRecord",
    "ApiKeyStore",
    "SqlAuditLog",
    "SqlJobQueue",
    "SqlTenantRepository",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "Transaction",
    "make_engine",
    "ping",
]

# --- row <-> entity -------------------------------------------------------------------------


def last_error_to_json(error: LastError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "step": error.step}


def last_error_from_json(data: dict[str, Any] | None) -> LastError | None:
    if data is None:
        return None
    return LastError(code=data["code"], message=data["message"], step=data.get("step"))


def tenant_to_row(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.spec.tenant_id,
        "tier": tenant.spec.tier,
        "display_name": tenant.spec.display_name,
        "admin_email": tenant.spec.admin_email,
        "status": tenant.status.value,
        "account_id": tenant.cell.account_id,
        "region": tenant.cell.region,
        "last_error": last_error_to_json(tenant.last_error),
        "outputs": dict(tenant.outputs),
        "completed_steps": list(tenant.completed_steps),
        "settings": tenant.spec.settings.public(),
        "settings_status": tenant.settings_status.value,
        "created_at": tenant.created_at,
        "updated_at": tenant.updated_at,
    }


def row_to_tenant(row: Row[Any]) -> Tenant:
    m = row._mapping
    return Tenant(
        spec=TenantSpec(
            tenant_id=m["tenant_id"],
            tier=m["tier"],
            display_name=m["display_name"],
            admin_email=m["admin_email"],
            settings=settings_from_json(m["settings"]),
        ),
        cell=Cell(account_id=m["account_id"], region=m["region"]),
        status=TenantStatus(m["status"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_error=last_error_from_json(m["last_error"]),
        outputs=dict(m["outputs"] or {}),
        completed_steps=list(m["completed_steps"] or []),
        settings_status=SettingsStatus(m["settings_status"] or "applied"),
    )


def row_to_job(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        tenant_id=m["tenant_id"],
        kind=JobKind(m["kind"]),
        attempts=m["attempts"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
    )


# --- transaction ----------------------------------------------------------------------------


class Transaction:
    """One connection and its (lazily begun) transaction, shared by the repositories."""

    def __init__(self, conn: AsyncConnection, *, read_only: bool = False) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.read_only = read_only

    async def execute(self, statement: Executable, *, write: bool, params: dict[str, Any] | None = None) -> Any:
        if write and self.read_only:
            raise RuntimeError("a read-only unit of work cannot write or lock")
        with translate_errors():
            if not self.conn.in_transaction():
                await begin(self.conn, write=write)
            return await self.conn.execute(statement, params)

    async def commit(self) -> None:
        if self.conn.in_transaction():
            with translate_errors():
                await self.conn.commit()

    async def rollback(self) -> None:
        if self.conn.in_transaction():
            with translate_errors():
                await self.conn.rollback()

    def insert(self, table: Any) -> Any:
        """A dialect ``INSERT`` that knows ``ON CONFLICT``."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        return insert(table)  # pragma: no cover - only PostgreSQL and SQLite are supported


# --- tenants --------------------------------------------------------------------------------


# Built once: the lookup by id is the hottest query (every GET /v1/tenants/{id}). FOR UPDATE is
# rendered on PostgreSQL; SQLite took its lock at BEGIN.
_GET_TENANT = select(tenants).where(tenants.c.tenant_id == bindparam("tenant_id"))
_GET_TENANT_FOR_UPDATE = _GET_TENANT.with_for_update()
_GET_TENANTS = select(tenants).where(tenants.c.tenant_id.in_(bindparam("tenant_ids", expanding=True)))


class SqlTenantRepository(TenantRepository):
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, tenant: Tenant) -> None:
        # ON CONFLICT DO NOTHING rather than catching the primary key's IntegrityError: on
        # PostgreSQL an error aborts the whole transaction, and the caller usually goes on to
        # read the existing tenant (same spec again is not a conflict).
        stmt = (
            self._tx.insert(tenants)
            .values(**tenant_to_row(tenant), version=1)
            .on_conflict_do_nothing(index_elements=[tenants.c.tenant_id])
        )
        result = await self._tx.execute(stmt, write=True)
        if result.rowcount == 0:
            raise TenantConflict(f"tenant {tenant.tenant_id!r} already exists")

    async def get(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        stmt = _GET_TENANT_FOR_UPDATE if for_update else _GET_TENANT
        result = await self._tx.execute(stmt, write=for_update, params={"tenant_id": tenant_id})
        row = result.first()
        return None if row is None else row_to_tenant(row)

    async def get_many(self, tenant_ids: Sequence[str]) -> dict[str, Tenant]:
        """The tenants of ``tenant_ids`` that exist, by id, in one query (batched_reads.py)."""
        if not tenant_ids:
            return {}
        result = await self._tx.execute(_GET_TENANTS, write=False, params={"tenant_ids": list(tenant_ids)})
        return {tenant.tenant_id: tenant for tenant in map(row_to_tenant, result)}

    async def save(self, tenant: Tenant) -> None:
        stmt = (
            update(tenants)
            .where(tenants.c.tenant_id == tenant.tenant_id)
            .values(
                status=tenant.status.value,
                last_error=last_error_to_json(tenant.last_error),
                outputs=dict(tenant.outputs),
                completed_steps=list(tenant.completed_steps),
                updated_at=tenant.updated_at,
                # A PATCH changes these on a live tenant (UpdateTenantSettings).
                display_name=tenant.spec.display_name,
                settings=tenant.spec.settings.public(),
                settings_status=tenant.settings_status.value,
                version=tenants.c.version + 1,
            )
        )
        result = await self._tx.execute(stmt, write=True)
        if result.rowcount == 0:
            raise TenantNotFound(f"tenant {tenant.tenant_id!r} not found")

    async def list(
        self, *, status: str | None, tier: str | None, limit: int, after: str | None
    ) -> builtins.list[Tenant]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stmt = select(tenants)
        if status is not None:
            stmt = stmt.where(tenants.c.status == status)
        if tier is not None:
            stmt = stmt.where(tenants.c.tier == tier)
        if after is not None:
            stmt = stmt.where(tenants.c.tenant_id > after)
        stmt = stmt.order_by(tenants.c.tenant_id).limit(limit)
        result = await self._tx.execute(stmt, write=False)
        return [row_to_tenant(row) for row in result]


# --- jobs -----------------------------------------------------------------------------------

_PENDING, _RUNNING, _DONE = "pending", "running", "done"

# Every claim bumps ``attempts``: a lease is (lease_owner, attempts).
JOB_LEASES = Leases(jobs, fence="attempts")


class SqlJobQueue(JobQueue):
    """Durable jobs with leases. A lease is fenced by (lease_owner, attempts): every claim bumps
    ``attempts``, so a worker whose lease was taken over can no longer extend, complete or
    release the job, even when the new holder has the same worker id."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def enqueue(self, tenant_id: str, kind: JobKind, now: datetime) -> None:
        stmt = (
            self._tx.insert(jobs)
            .values(tenant_id=tenant_id, kind=kind.value, state=_PENDING, attempts=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(
                # Literal, not a bound parameter: PostgreSQL matches the partial index at parse time.
                index_elements=[jobs.c.tenant_id, jobs.c.kind],
                index_where=text("state = 'pending'"),
            )
        )
        try:
            await self._tx.execute(stmt, write=True)
        except IntegrityError as e:  # the only constraint left is the foreign key
            raise TenantNotFound(f"tenant {tenant_id!r} not found") from e

    async def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> Job | None:
        claimed = await self.claim_batch(worker_id, now, lease_seconds, 1)
        return claimed[0] if claimed else None

    async def claim_batch(self, worker_id: str, now: datetime, lease_seconds: float, limit: int) -> list[Job]:
        """Lease up to ``limit`` runnable jobs in one transaction, oldest first. One claim per
        transaction capped how fast a busy worker took on a burst of onboardings (300 at once)."""
        j = jobs.alias("j")
        earlier = jobs.alias("earlier")
        leased = jobs.alias("leased")
        # Pending jobs hold no lease; a running job is runnable again once its lease expired.
        runnable = and_(j.c.state.in_((_PENDING, _RUNNING)), JOB_LEASES.free(now, j))
        # A tenant's jobs run one at a time, in order: a job waits for every older unfinished job
        # of its tenant, and for any other job of its tenant whose lease is live. So one batch
        # never holds two jobs of one tenant.
        earlier_unfinished = exists().where(
            earlier.c.tenant_id == j.c.tenant_id, earlier.c.id < j.c.id, earlier.c.state != _DONE
        )
        other_leased = exists().where(
            leased.c.tenant_id == j.c.tenant_id,
            leased.c.id != j.c.id,
            leased.c.state == _RUNNING,
            JOB_LEASES.live(now, leased),
        )
        candidates = JOB_LEASES.candidates(j, runnable, ~earlier_unfinished, ~other_leased, limit=max(1, limit))
        rows = await JOB_LEASES.claim(
            lambda stmt: self._tx.execute(stmt, write=True),
            candidates,
            owner=worker_id,
            now=now,
            lease_seconds=lease_seconds,
            values={"state": _RUNNING, "updated_at": now},
        )
        claimed = [row_to_job(row) for row in rows]
        fresh = [job.tenant_id for job in claimed if job.attempts == 1]
        if fresh:
            # Jobs are kept once done, so "no job of this tenant has a smaller id" means this is
            # the job OnboardTenant wrote with the tenant (ProvisionTenant's fast path).
            first_ids = select(jobs.c.tenant_id, func.min(jobs.c.id)).where(jobs.c.tenant_id.in_(fresh)).group_by(jobs.c.tenant_id)
            first = {tenant: first_id for tenant, first_id in (await self._tx.execute(first_ids, write=False)).all()}
            claimed = [
                replace(job, first_for_tenant=first.get(job.tenant_id) == job.id) if job.attempts == 1 else job
                for job in claimed
            ]
        return claimed

    def _owned(self, job: Job) -> Any:
        return and_(JOB_LEASES.held(job.id, job.lease_owner, job.attempts), jobs.c.state == _RUNNING)

    async def holds(self, job: Job) -> bool:
        """Fencing: True while ``job`` is still this holder's, and its row stays locked until the
        transaction ends, so no claim can take it over between this check and the write it guards."""
        stmt = select(jobs.c.id).where(self._owned(job)).with_for_update()
        result = await self._tx.execute(stmt, write=True)
        return result.first() is not None

    async def extend(self, job: Job, now: datetime, lease_seconds: float) -> bool:
        stmt = JOB_LEASES.extend(self._owned(job), now, lease_seconds, {"updated_at": now})
        result = await self._tx.execute(stmt, write=True)
        return bool(result.rowcount == 1)

    async def complete(self, job: Job, now: datetime) -> None:
        """Marks the job done if this worker still holds its lease; otherwise does nothing (the
        job belongs to whoever took it over)."""
        stmt = JOB_LEASES.release(self._owned(job), {"state": _DONE, "updated_at": now}, keep_owner=True)
        await self._tx.execute(stmt, write=True)

    async def release(self, job: Job, now: datetime) -> None:
        """Back to pending, if still held. When an equal job was enqueued meanwhile, this one is
        folded into it (marked done): at most one pending job per tenant and kind."""
        sibling = jobs.alias("sibling")
        pending_twin = exists().where(
            sibling.c.tenant_id == jobs.c.tenant_id,
            sibling.c.kind == jobs.c.kind,
            sibling.c.state == _PENDING,
            sibling.c.id != jobs.c.id,
        )
        stmt = JOB_LEASES.release(
            self._owned(job), {"state": case((pending_twin, _DONE), else_=_PENDING), "updated_at": now}
        )
        await self._tx.execute(stmt, write=True)

    async def pending_count(self) -> int:
        stmt = select(func.count()).select_from(jobs).where(jobs.c.state == _PENDING)
        result = await self._tx.execute(stmt, write=False)
        return int(result.scalar_one())


# --- audit trail ----------------------------------------------------------------------------


class SqlAuditLog(AuditLog):
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, event: AuditEvent) -> None:
        stmt = insert(audit_events).values(
            tenant_id=event.tenant_id,
            at=event.at,
            actor=event.actor,
            action=event.action,
            outcome=event.outcome,
            detail=dict(event.detail),
            request_id=event.request_id,
        )
        await self._tx.execute(stmt, write=True)

    async def list_for_tenant(self, tenant_id: str, *, limit: int, after_id: int | None) -> builtins.list[AuditEvent]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stmt = select(audit_events).where(audit_events.c.tenant_id == tenant_id)
        if after_id is not None:
            stmt = stmt.where(audit_events.c.id > after_id)
        result = await self._tx.execute(stmt.order_by(audit_events.c.id).limit(limit), write=False)
        return [
            AuditEvent(
                id=m["id"],
                tenant_id=m["tenant_id"],
                at=m["at"],
                actor=m["actor"],
                action=m["action"],
                outcome=m["outcome"],
                detail=dict(m["detail"] or {}),
                request_id=m["request_id"],
            )
            for m in (row._mapping for row in result)
        ]


# --- unit of work ---------------------------------------------------------------------------


class SqlUnitOfWork(UnitOfWork):
    """``async with uow: ...; await uow.commit()``. Leaving the block without committing rolls
    back. After a commit the same unit can go on: the next statement starts a new transaction.
    ``read_only``: only plain reads (a write or lock raises); on PostgreSQL each runs on its own,
    without BEGIN and ROLLBACK, so a lookup costs one round trip."""

    tenants: SqlTenantRepository
    jobs: SqlJobQueue
    events: SqlAuditLog
    outbox: SqlOutbox

    def __init__(
        self,
        engine: AsyncEngine,
        outbox_destinations: Sequence[str] = (),
        on_outbox_commit: OnCommit | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._tx: Transaction | None = None
        self._destinations = tuple(outbox_destinations)
        self._on_outbox_commit = on_outbox_commit
        self._staged_events: list[LifecycleEvent] = []

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already open")
        with all_errors_unavailable():
            conn = await self._engine.connect()
        if self._read_only and conn.dialect.name == "postgresql":
            # Each read is one statement, atomic by itself: no BEGIN and ROLLBACK round trips.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        self._tx = Transaction(conn, read_only=self._read_only)
        self.tenants = SqlTenantRepository(self._tx)
        self.jobs = SqlJobQueue(self._tx)
        self.events = SqlAuditLog(self._tx)
        self._staged_events = []
        self.outbox = SqlOutbox(self._tx, self._destinations, self._staged_events)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tx, self._tx = self._tx, None
        if tx is None:
            return
        try:
            if not tx.read_only:  # a reader has nothing to undo: close() ends its transaction
                await tx.rollback()
        except Exception:
            if exc is None:
                raise
            # Already failing (often for the same lost connection): keep the original error.
        finally:
            await tx.conn.close()

    def _open(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._tx

    async def commit(self) -> None:
        await self._open().commit()
        committed, self._staged_events[:] = list(self._staged_events), []
        if committed and self._on_outbox_commit is not None:
            # Lifecycle events are in the registry now: wake the dispatcher (in this process).
            self._on_outbox_commit(committed)

    async def rollback(self) -> None:
        await self._open().rollback()
        self._staged_events.clear()


class SqlUnitOfWorkFactory(UnitOfWorkFactory):
    """``outbox_destinations``: where lifecycle events go (one outbox row each; none: no rows);
    ``on_outbox_commit`` is called with the events of each commit that wrote some."""

    def __init__(
        self, engine: AsyncEngine, outbox_destinations: Sequence[str] = (), on_outbox_commit: OnCommit | None = None
    ) -> None:
        self.engine = engine
        self.outbox_destinations = tuple(outbox_destinations)
        self.on_outbox_commit = on_outbox_commit

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.outbox_destinations, self.on_outbox_commit, read_only=read_only)
