"""The SQL registry against real SQLite and PostgreSQL: repository, job queue, API keys,
migrations and error translation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, ForeignKeyConstraint, PrimaryKeyConstraint
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.api_keys import ApiKeyRecord, ApiKeyStore, hash_key, new_key_id
from adapters.registry.engine import make_engine, ping
from adapters.registry.migrate import current_revision, downgrade, head_revision, upgrade
from adapters.registry.sql import SqlUnitOfWorkFactory
from adapters.registry.tables import metadata
from domain.errors import RegistryUnavailable, TenantConflict, TenantNotFound
from domain.ports import Job
from domain.tenant import Cell, JobKind, LastError, Tenant, TenantSpec, TenantStatus, new_tenant

CELL = Cell(account_id="123456789012", region="eu-west-1")
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_tenant(tenant_id: str | None = None, *, tier: str = "standard", now: datetime = T0) -> Tenant:
    tenant_id = tenant_id or unique_id()
    return new_tenant(TenantSpec(tenant_id, tier, f"Tenant {tenant_id}", f"admin@{tenant_id}.example"), CELL, now)


async def add_tenants(factory: SqlUnitOfWorkFactory, *tenants: Tenant) -> None:
    async with factory() as uow:
        for tenant in tenants:
            await uow.tenants.add(tenant)
        await uow.commit()


async def enqueue(factory: SqlUnitOfWorkFactory, tenant_id: str, kind: JobKind, now: datetime = T0) -> None:
    async with factory() as uow:
        await uow.jobs.enqueue(tenant_id, kind, now)
        await uow.commit()


async def claim(factory: SqlUnitOfWorkFactory, worker: str, now: datetime = T0, lease: float = 30) -> Job | None:
    async with factory() as uow:
        job = await uow.jobs.claim(worker, now, lease)
        await uow.commit()
        return job


# --- tenants --------------------------------------------------------------------------------


async def test_add_get_round_trip_keeps_aware_datetimes_and_json(uow_factory: SqlUnitOfWorkFactory) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2025, 3, 1, 14, 0, 0, 500, tzinfo=plus_two)
    tenant = make_tenant(now=created)
    tenant.status = TenantStatus.FAILED
    tenant.last_error = LastError(code="LimitExceededException", message="too many pools", step="user_pool")
    tenant.outputs = {"user_pool_id": "eu-west-1_abc", "nested": {"groups": ["admins", "users"], "n": 3}}
    tenant.completed_steps = ["user_pool", "groups"]
    await add_tenants(uow_factory, tenant)

    async with uow_factory() as uow:
        got = await uow.tenants.get(tenant.tenant_id)
    assert got is not None
    assert got == tenant
    assert got.created_at.tzinfo is UTC and got.updated_at.tzinfo is UTC
    assert got.created_at == datetime(2025, 3, 1, 12, 0, 0, 500, tzinfo=UTC)
    assert got.last_error == LastError("LimitExceededException", "too many pools", "user_pool")

    async with uow_factory() as uow:
        assert await uow.tenants.get(unique_id("missing")) is None


async def test_no_last_error_is_stored_as_null(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    tenant.spec = TenantSpec(tenant.tenant_id, "basic", "No email")
    await add_tenants(uow_factory, tenant)
    async with uow_factory() as uow:
        got = await uow.tenants.get(tenant.tenant_id)
    assert got is not None and got.last_error is None and got.spec.admin_email is None and got.outputs == {}


async def test_naive_datetimes_are_refused(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant(now=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(Exception, match="naive datetime"):
        await add_tenants(uow_factory, tenant)


async def test_duplicate_add_is_a_conflict_and_leaves_the_transaction_usable(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    async with uow_factory() as uow:
        with pytest.raises(TenantConflict):
            await uow.tenants.add(make_tenant(tenant.tenant_id, tier="premium"))
        existing = await uow.tenants.get(tenant.tenant_id)
        assert existing is not None and existing.spec.tier == "standard"


async def test_save_writes_back_state(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    later = T0 + timedelta(minutes=5)
    async with uow_factory() as uow:
        loaded = await uow.tenants.get(tenant.tenant_id, for_update=True)
        assert loaded is not None
        loaded.transition(TenantStatus.ACTIVE, later)
        loaded.outputs["user_pool_id"] = "eu-west-1_xyz"
        loaded.completed_steps.append("user_pool")
        await uow.tenants.save(loaded)
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.tenants.get(tenant.tenant_id)
    assert got is not None
    assert (got.status, got.updated_at, got.created_at) == (TenantStatus.ACTIVE, later, T0)
    assert got.outputs == {"user_pool_id": "eu-west-1_xyz"} and got.completed_steps == ["user_pool"]

    async with uow_factory() as uow:
        with pytest.raises(TenantNotFound):
            await uow.tenants.save(make_tenant())


async def test_concurrent_read_modify_write_with_for_update_loses_nothing(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)

    async def append_step(i: int) -> None:
        async with uow_factory() as uow:
            loaded = await uow.tenants.get(tenant.tenant_id, for_update=True)
            assert loaded is not None
            await asyncio.sleep(0)  # let the others try to interleave
            loaded.completed_steps.append(f"step-{i}")
            await uow.tenants.save(loaded)
            await uow.commit()

    await asyncio.gather(*(append_step(i) for i in range(8)))
    async with uow_factory() as uow:
        got = await uow.tenants.get(tenant.tenant_id)
    assert got is not None and sorted(got.completed_steps) == sorted(f"step-{i}" for i in range(8))


async def test_list_filters_and_pages_by_tenant_id(uow_factory: SqlUnitOfWorkFactory) -> None:
    prefix = unique_id("l")
    tenants = [make_tenant(f"{prefix}-{i:02d}", tier="premium" if i % 3 == 0 else "standard") for i in range(11)]
    for i, tenant in enumerate(tenants):
        if i % 2 == 0:
            tenant.status = TenantStatus.ACTIVE
    await add_tenants(uow_factory, *reversed(tenants))

    async def all_pages(status: str | None, tier: str | None, limit: int) -> list[list[str]]:
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            async with uow_factory() as uow:
                page = await uow.tenants.list(status=status, tier=tier, limit=limit, after=after)
            if not page:
                return pages
            pages.append([t.tenant_id for t in page])
            after = page[-1].tenant_id

    ids = [t.tenant_id for t in tenants]
    assert await all_pages(None, None, 4) == [ids[0:4], ids[4:8], ids[8:11]]
    active = [t.tenant_id for t in tenants if t.status is TenantStatus.ACTIVE]
    assert [i for page in await all_pages("active", None, 2) for i in page] == active
    premium = [t.tenant_id for t in tenants if t.spec.tier == "premium"]
    assert await all_pages(None, "premium", 3) == [premium[0:3], premium[3:]]
    both = [t.tenant_id for t in tenants if t.spec.tier == "premium" and t.status is TenantStatus.ACTIVE]
    assert both and [i for page in await all_pages("active", "premium", 1) for i in page] == both
    async with uow_factory() as uow:
        assert await uow.tenants.list(status="deleted", tier=None, limit=10, after=None) == []


async def test_unit_of_work_rolls_back_unless_committed(uow_factory: SqlUnitOfWorkFactory) -> None:
    dropped, raised, rolled_back, kept = (make_tenant() for _ in range(4))
    async with uow_factory() as uow:
        await uow.tenants.add(dropped)
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.tenants.add(raised)
            raise RuntimeError("boom")
    async with uow_factory() as uow:
        await uow.tenants.add(rolled_back)
        await uow.rollback()
        await uow.tenants.add(kept)  # the unit goes on with a new transaction
        await uow.commit()
    async with uow_factory() as uow:
        assert [await uow.tenants.get(t.tenant_id) is None for t in (dropped, raised, rolled_back, kept)] == [
            True,
            True,
            True,
            False,
        ]


# --- jobs -----------------------------------------------------------------------------------


async def test_job_lifecycle(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)  # already pending: no second one
    async with uow_factory() as uow:
        assert await uow.jobs.pending_count() == 1

    job = await claim(uow_factory, "w1")
    assert job is not None
    assert (job.tenant_id, job.kind, job.attempts, job.lease_owner) == (tenant.tenant_id, JobKind.PROVISION, 1, "w1")
    assert job.lease_expires_at == T0 + timedelta(seconds=30)
    assert await claim(uow_factory, "w2") is None

    async with uow_factory() as uow:
        assert await uow.jobs.pending_count() == 0
        assert await uow.jobs.extend(job, T0 + timedelta(seconds=20), 30) is True
        await uow.commit()
    # The extended lease (to T0+50 s) is still live at T0+40 s.
    assert await claim(uow_factory, "w2", T0 + timedelta(seconds=40)) is None

    async with uow_factory() as uow:
        await uow.jobs.release(job, T0 + timedelta(seconds=41))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.jobs.pending_count() == 1
    again = await claim(uow_factory, "w2", T0 + timedelta(seconds=42))
    assert again is not None and (again.id, again.attempts, again.lease_owner) == (job.id, 2, "w2")

    async with uow_factory() as uow:
        await uow.jobs.complete(again, T0 + timedelta(seconds=43))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.jobs.pending_count() == 0
        assert await uow.jobs.extend(again, T0 + timedelta(seconds=44), 30) is False  # done
    assert await claim(uow_factory, "w3", T0 + timedelta(hours=1)) is None


async def test_enqueue_for_an_unknown_tenant_is_not_found(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(TenantNotFound):
            await uow.jobs.enqueue(unique_id("ghost"), JobKind.PROVISION, T0)


async def test_release_folds_into_an_equal_pending_job(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    job = await claim(uow_factory, "w1")
    assert job is not None
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)  # the first one is running
    async with uow_factory() as uow:
        await uow.jobs.release(job, T0)
        await uow.commit()
        assert await uow.jobs.pending_count() == 1
    nxt = await claim(uow_factory, "w2")
    assert nxt is not None and nxt.id != job.id
    assert await claim(uow_factory, "w3") is None


async def test_concurrent_claims_never_share_a_job_nor_a_tenant(uow_factory: SqlUnitOfWorkFactory) -> None:
    singles = [make_tenant() for _ in range(10)]
    busy = make_tenant()
    await add_tenants(uow_factory, *singles, busy)
    for tenant in singles:
        await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    await enqueue(uow_factory, busy.tenant_id, JobKind.PROVISION)
    await enqueue(uow_factory, busy.tenant_id, JobKind.DEPROVISION)

    claimed = await asyncio.gather(*(claim(uow_factory, f"w{i}") for i in range(16)))
    jobs = [job for job in claimed if job is not None]
    assert len({job.id for job in jobs}) == len(jobs) == 11
    assert sorted(job.tenant_id for job in jobs) == sorted(t.tenant_id for t in [*singles, busy])
    first = next(job for job in jobs if job.tenant_id == busy.tenant_id)
    assert first.kind is JobKind.PROVISION

    # The tenant's deprovision waits for its provision, even past the end of nothing else to do.
    assert await claim(uow_factory, "late", T0 + timedelta(seconds=10)) is None
    async with uow_factory() as uow:
        await uow.jobs.complete(first, T0 + timedelta(seconds=11))
        await uow.commit()
    second = await claim(uow_factory, "late", T0 + timedelta(seconds=12))
    assert second is not None and (second.tenant_id, second.kind) == (busy.tenant_id, JobKind.DEPROVISION)


async def claim_batch(factory: SqlUnitOfWorkFactory, worker: str, limit: int, now: datetime = T0) -> list[Job]:
    async with factory() as uow:
        jobs = await uow.jobs.claim_batch(worker, now, 30, limit)
        await uow.commit()
    return jobs


async def test_batch_claims_lease_up_to_the_limit_oldest_first_and_never_overlap(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    singles = [make_tenant() for _ in range(12)]
    busy = make_tenant()
    await add_tenants(uow_factory, *singles, busy)
    for tenant in singles:
        await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    await enqueue(uow_factory, busy.tenant_id, JobKind.PROVISION)
    await enqueue(uow_factory, busy.tenant_id, JobKind.DEPROVISION)

    first = await claim_batch(uow_factory, "w1", 5)
    assert len(first) == 5
    assert [job.id for job in first] == sorted(job.id for job in first)
    assert all(job.attempts == 1 and job.lease_owner == "w1" and job.first_for_tenant for job in first)

    # Three claimers at once: what is left, each job once, and never a tenant's second job.
    rest = await asyncio.gather(*(claim_batch(uow_factory, f"w{i}", 4) for i in range(2, 5)))
    jobs = [*first, *(job for batch in rest for job in batch)]
    assert len({job.id for job in jobs}) == len(jobs) == 13
    assert sorted(job.tenant_id for job in jobs) == sorted(t.tenant_id for t in [*singles, busy])
    assert next(job for job in jobs if job.tenant_id == busy.tenant_id).kind is JobKind.PROVISION
    assert await claim_batch(uow_factory, "late", 10, T0 + timedelta(seconds=10)) == []

    # Expired leases come back in a batch too, as attempt 2 and no longer a first run.
    again = await claim_batch(uow_factory, "w9", 3, T0 + timedelta(seconds=31))
    assert len(again) == 3
    assert all(job.attempts == 2 and not job.first_for_tenant for job in again)


async def test_expired_lease_is_reclaimed_and_the_old_owner_is_fenced(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    old = await claim(uow_factory, "worker-a", T0, lease=30)
    assert old is not None
    assert await claim(uow_factory, "worker-b", T0 + timedelta(seconds=29)) is None

    new = await claim(uow_factory, "worker-b", T0 + timedelta(seconds=31), lease=30)
    assert new is not None and (new.id, new.attempts, new.lease_owner) == (old.id, 2, "worker-b")

    later = T0 + timedelta(seconds=32)
    async with uow_factory() as uow:
        assert await uow.jobs.extend(old, later, 30) is False
        await uow.jobs.complete(old, later)
        await uow.jobs.release(old, later)
        await uow.commit()
    async with uow_factory() as uow:
        # Neither took effect: the job is still running, held by worker-b.
        assert await uow.jobs.pending_count() == 0
        assert await uow.jobs.extend(new, later, 30) is True
        await uow.commit()

    # Same worker id, newer lease: the stale handle is still fenced by its attempt number.
    again = await claim(uow_factory, "worker-b", T0 + timedelta(minutes=5))
    assert again is not None and again.attempts == 3
    async with uow_factory() as uow:
        assert await uow.jobs.extend(new, T0 + timedelta(minutes=5), 30) is False


async def test_holds_is_the_fencing_check_of_provisioning_writes(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    await enqueue(uow_factory, tenant.tenant_id, JobKind.PROVISION)
    old = await claim(uow_factory, "worker-a", T0, lease=30)
    assert old is not None
    async with uow_factory() as uow:
        assert await uow.jobs.holds(old) is True
        await uow.commit()
    new = await claim(uow_factory, "worker-b", T0 + timedelta(seconds=31), lease=30)
    assert new is not None
    async with uow_factory() as uow:
        assert await uow.jobs.holds(old) is False
        assert await uow.jobs.holds(new) is True
        await uow.commit()
    async with uow_factory() as uow:
        await uow.jobs.complete(new, T0 + timedelta(seconds=40))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.jobs.holds(new) is False  # a finished job is nobody's any more


# --- API keys -------------------------------------------------------------------------------


async def test_api_key_store(engine: AsyncEngine) -> None:
    store = ApiKeyStore(engine)
    secret = "tk_" + uuid.uuid4().hex
    record = ApiKeyRecord(
        id=new_key_id(),
        name="bootstrap",
        prefix=secret[:8],
        key_hash=hash_key(secret),
        scopes=("tenants:read",),
        created_at=T0,
    )
    first, change = await store.put_bootstrap(record)
    assert first == record and change == "created"
    second, change = await store.put_bootstrap(
        ApiKeyRecord(record.id, "bootstrap", secret[:8], hash_key(secret), ("tenants:read", "tenants:write"), T0)
    )
    assert second.id == record.id and second.scopes == ("tenants:read", "tenants:write") and change == "kept"
    assert [k.id for k in await store.list()] == [record.id]

    other = ApiKeyRecord(new_key_id(), "ci", "tk_other", hash_key("tk_other-secret"), (), T0 + timedelta(seconds=1))
    await store.add(other)
    assert [k.id for k in await store.list()] == [record.id, other.id]

    assert await store.find_by_hash(hash_key("not a key")) is None
    await store.touch(record.id, T0 + timedelta(minutes=1))
    await store.touch(record.id, T0 + timedelta(minutes=1, seconds=30))  # within a minute: no write
    found = await store.find_by_hash(hash_key(secret))
    assert found is not None and found.last_used_at == T0 + timedelta(minutes=1)
    await store.touch(record.id, T0 + timedelta(minutes=3))
    found = await store.find_by_hash(hash_key(secret))
    assert found is not None and found.last_used_at == T0 + timedelta(minutes=3)
    assert found.is_active(T0 + timedelta(minutes=3))

    revoked_at = T0 + timedelta(minutes=4)
    assert await store.revoke(record.id, revoked_at) is True
    assert await store.revoke(record.id, revoked_at + timedelta(seconds=1)) is False
    assert await store.revoke("key_unknown", revoked_at) is False
    found = await store.find_by_hash(hash_key(secret))
    assert found is not None and found.revoked_at == revoked_at and not found.is_active(revoked_at)
    assert await store.get(record.id) == found
    assert await store.get("key_unknown") is None
    # Re-registering at the next start-up does not bring a revoked key back.
    again, change = await store.put_bootstrap(record)
    assert again.revoked_at == revoked_at and change == "kept"


# --- migrations -----------------------------------------------------------------------------


def _table_names(engine_sync_conn: object) -> set[str]:
    return set(sa_inspect(engine_sync_conn).get_table_names())


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_table_names)
    finally:
        await engine.dispose()


async def test_migration_stairway(empty_database_url: str) -> None:
    app_tables = {"tenants", "jobs", "api_keys", "idempotency_keys", "audit_events", "server_keys"}
    assert await current_revision(empty_database_url) is None
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision() is not None
    assert app_tables <= await _tables(empty_database_url)
    await downgrade(empty_database_url, "base")
    assert await current_revision(empty_database_url) is None
    assert not app_tables & await _tables(empty_database_url)
    await upgrade(empty_database_url, "head")
    assert app_tables <= await _tables(empty_database_url)


def _constraint_names(sync_conn: Connection) -> dict[str, set[str | None]]:
    """Names of the constraints autogenerate does not compare (check, primary and foreign key);
    error translation and future migrations rely on them."""
    inspector = sa_inspect(sync_conn)
    return {
        table: {c["name"] for c in inspector.get_check_constraints(table)}
        | {inspector.get_pk_constraint(table)["name"]}
        | {fk["name"] for fk in inspector.get_foreign_keys(table)}
        for table in metadata.tables
    }


def _declared_constraint_names() -> dict[str, set[str | None]]:
    return {
        table.name: {
            str(c.name)
            for c in table.constraints
            if isinstance(c, CheckConstraint | PrimaryKeyConstraint | ForeignKeyConstraint)
        }
        for table in metadata.tables.values()
    }


async def test_migrated_schema_matches_the_tables(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True}),
                    metadata,
                )
            )
            names = await conn.run_sync(_constraint_names)
    finally:
        await engine.dispose()
    assert diffs == []
    assert names == _declared_constraint_names()


# --- availability ---------------------------------------------------------------------------


async def test_ping_succeeds_on_a_live_registry(engine: AsyncEngine) -> None:
    await ping(engine)


async def test_unreachable_server_is_registry_unavailable_without_the_password() -> None:
    engine = make_engine("postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:1/x")
    try:
        with pytest.raises(RegistryUnavailable) as ping_error:
            await ping(engine)
        with pytest.raises(RegistryUnavailable) as uow_error:
            async with SqlUnitOfWorkFactory(engine)() as uow:
                await uow.tenants.get("acme")
        with pytest.raises(RegistryUnavailable):
            await ApiKeyStore(engine).find_by_hash(hash_key("x"))
    finally:
        await engine.dispose()
    for error in (ping_error.value, uow_error.value):
        assert "s3cret-pw" not in str(error) and error.code == "registry_unavailable"


async def test_missing_schema_on_sqlite_is_registry_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty/registry.db")
    try:
        async with SqlUnitOfWorkFactory(engine)() as uow:
            with pytest.raises(RegistryUnavailable, match="no such table"):
                await uow.tenants.get("acme")
    finally:
        await engine.dispose()


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    engine = make_engine(f"sqlite:///{path}")  # the async driver is filled in
    try:
        async with engine.connect() as conn:
            settings = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            ]
    finally:
        await engine.dispose()
    assert settings == ["wal", 5000, 1]
    assert path.exists()
