"""The registry's read path on SQLite and PostgreSQL: read-only units of work (what GET
/v1/tenants/{id} and the list use), keyset pages at their boundaries, and the replacement of a
pooled PostgreSQL connection that died while idle."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

import adapters.registry.engine as registry_engine
from adapters.registry.batched_reads import BatchedGetTenant
from adapters.registry.engine import make_engine
from adapters.registry.sql import SqlUnitOfWorkFactory
from domain.errors import RegistryUnavailable, TenantNotFound
from domain.tenant import JobKind, Tenant, TenantStatus
from domain.usecases import GetTenant, ListTenants
from tests.integration.databases import throwaway_database
from tests.integration.test_registry import T0, add_tenants, make_tenant, unique_id


async def test_a_read_only_unit_reads_what_was_committed_and_refuses_to_write(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    async with uow_factory(read_only=True) as uow:
        got = await uow.tenants.get(tenant.tenant_id)
        assert got is not None and got.spec == tenant.spec and got.created_at == T0
        assert await uow.tenants.get(unique_id()) is None
        for write in (
            lambda: uow.tenants.add(make_tenant()),
            lambda: uow.tenants.get(tenant.tenant_id, for_update=True),
            lambda: uow.tenants.save(tenant),
            lambda: uow.jobs.enqueue(tenant.tenant_id, JobKind.PROVISION, T0),
        ):
            with pytest.raises(RuntimeError, match="read-only"):
                await write()
    # The connection went back to the pool in its normal mode: a writing unit still rolls back.
    other = make_tenant()
    async with uow_factory() as uow:
        await uow.tenants.add(other)
    async with uow_factory(read_only=True) as uow:
        assert await uow.tenants.get(other.tenant_id) is None


async def test_get_tenant_reads_the_latest_committed_state(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant = make_tenant()
    await add_tenants(uow_factory, tenant)
    get = GetTenant(uow_factory)
    assert (await get(tenant.tenant_id)).status is TenantStatus.PROVISIONING
    tenant.status = TenantStatus.ACTIVE
    async with uow_factory() as uow:
        await uow.tenants.save(tenant)
        await uow.commit()
    assert (await get(tenant.tenant_id)).status is TenantStatus.ACTIVE
    with pytest.raises(TenantNotFound):
        await get(unique_id())


@pytest.mark.parametrize("count", [0, 1, 4, 5, 9])
async def test_list_pages_at_the_boundaries(uow_factory: SqlUnitOfWorkFactory, count: int) -> None:
    """Pages of 4 over 0, 1, exactly one page, one more than a page and two pages plus one: every
    tenant once, in order, and no cursor after the last page (not even a full one)."""
    prefix = unique_id("p")
    tenants = [make_tenant(f"{prefix}-{i:02d}", tier=f"tier-{prefix}") for i in range(count)]
    if tenants:
        await add_tenants(uow_factory, *reversed(tenants))
    list_tenants = ListTenants(uow_factory)
    pages, after = [], None
    while True:
        page = await list_tenants(status=None, tier=f"tier-{prefix}", limit=4, after=after)
        pages.append([t.tenant_id for t in page.items])
        if page.next_after is None:
            break
        assert page.next_after == page.items[-1].tenant_id
        after = page.next_after
    ids = [t.tenant_id for t in tenants]
    assert pages == [ids[i : i + 4] for i in range(0, max(count, 1), 4)]


async def test_a_pooled_postgresql_connection_that_died_while_idle_is_replaced(
    postgres_server_url: str, postgres_template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL only (SQLite has no server connection to lose): a request after the server ended
    an idle pooled connection is served on a new one, not failed."""
    tenant = make_tenant()
    async with throwaway_database(postgres_server_url, template=postgres_template) as database_url:
        admin = make_engine(database_url)
        pooled = make_engine(database_url, pool_size=1, max_overflow=0)
        try:
            factory = SqlUnitOfWorkFactory(pooled)
            await add_tenants(factory, tenant)
            async with pooled.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            # The server ends the pooled connection (a restart, an idle timeout, a failover).
            async with admin.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await conn.commit()
            monkeypatch.setattr(registry_engine, "PING_IDLE_S", 0.0)  # every pooled connection counts as idle
            assert (await GetTenant(factory)(tenant.tenant_id)).tenant_id == tenant.tenant_id
            async with pooled.connect() as conn:
                assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
        finally:
            await pooled.dispose()
            await admin.dispose()


async def test_get_many_returns_the_tenants_that_exist(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenants = [make_tenant() for _ in range(3)]
    await add_tenants(uow_factory, *tenants)
    missing = unique_id()
    async with uow_factory(read_only=True) as uow:
        found = await uow.tenants.get_many([t.tenant_id for t in tenants] + [missing])
        assert await uow.tenants.get_many([]) == {}
    assert set(found) == {t.tenant_id for t in tenants}
    assert all(found[t.tenant_id].spec == t.spec for t in tenants)


async def test_concurrent_lookups_share_queries_and_each_gets_its_own_answer(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenants = [make_tenant() for _ in range(5)]
    await add_tenants(uow_factory, *tenants)
    get = BatchedGetTenant(uow_factory, max_batch=3)
    missing = unique_id()
    asked = [t.tenant_id for t in tenants] + [tenants[0].tenant_id, missing]  # a repeat and an unknown id
    answers = await asyncio.gather(*(get(tenant_id) for tenant_id in asked), return_exceptions=True)
    for tenant_id, answer in zip(asked[:-1], answers[:-1], strict=True):
        assert isinstance(answer, Tenant) and answer.tenant_id == tenant_id
    assert isinstance(answers[-1], TenantNotFound)
    assert get.queries == 2  # 6 distinct ids, batches of at most 3
    # A lone lookup is answered too, and sees what was committed since.
    tenants[1].status = TenantStatus.ACTIVE
    async with uow_factory() as uow:
        await uow.tenants.save(tenants[1])
        await uow.commit()
    assert (await get(tenants[1].tenant_id)).status is TenantStatus.ACTIVE and get.queries == 3


async def test_a_failed_batch_query_reaches_every_caller() -> None:
    engine = make_engine("postgresql+asyncpg://postgres:pw@127.0.0.1:1/nowhere")  # nothing listens there
    try:
        get = BatchedGetTenant(SqlUnitOfWorkFactory(engine))
        answers = await asyncio.gather(*(get(f"t-{i:03d}") for i in range(4)), return_exceptions=True)
        assert [type(a) for a in answers] == [RegistryUnavailable] * 4 and get.queries == 1
    finally:
        await engine.dispose()
