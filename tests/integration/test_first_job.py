"""Job.first_for_tenant from the SQL job queue (ProvisionTenant's fast path trusts it), on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.registry.sql import SqlUnitOfWorkFactory
from domain.ports import Job
from domain.tenant import Cell, JobKind, TenantSpec, new_tenant

CELL = Cell(account_id="123456789012", region="us-east-1")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _claim(uow_factory: SqlUnitOfWorkFactory, at: datetime) -> Job | None:
    async with uow_factory() as uow:
        job = await uow.jobs.claim("w1", at, 60)
        await uow.commit()
    return job


async def test_only_attempt_one_of_a_tenants_first_job_is_first(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for tenant_id in ("one", "two"):
            await uow.tenants.add(new_tenant(TenantSpec(tenant_id, "basic", tenant_id), CELL, NOW))
            await uow.jobs.enqueue(tenant_id, JobKind.PROVISION, NOW)
        await uow.commit()

    first = await _claim(uow_factory, NOW)
    assert first is not None and (first.tenant_id, first.attempts, first.first_for_tenant) == ("one", 1, True)
    second = await _claim(uow_factory, NOW)  # another tenant's first job is first too
    assert second is not None and (second.tenant_id, second.first_for_tenant) == ("two", True)

    # Released (say at shutdown) and claimed again: attempt 2, no longer first.
    async with uow_factory() as uow:
        await uow.jobs.release(first, NOW)
        await uow.commit()
    again = await _claim(uow_factory, NOW)
    assert again is not None and (again.id, again.attempts, again.first_for_tenant) == (first.id, 2, False)

    # Done, then a later job of the same tenant (a retry): attempt 1, but not the tenant's first.
    async with uow_factory() as uow:
        await uow.jobs.complete(again, NOW)
        await uow.jobs.enqueue("one", JobKind.PROVISION, NOW + timedelta(seconds=1))
        await uow.commit()
    retry = await _claim(uow_factory, NOW + timedelta(seconds=1))
    assert retry is not None and (retry.tenant_id, retry.attempts, retry.first_for_tenant) == ("one", 1, False)
