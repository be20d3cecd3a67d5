"""Tenant lookups under load: the lookups waiting at the same moment share one registry query.

``GET /v1/tenants/{id}`` is the hottest read. Rather than one round trip (and its share of the
pool, the driver and the database) per request, the lookups made while the event loop runs its
ready tasks are gathered and answered, on the loop's next turn, by one ``SELECT ... WHERE tenant_id
IN (...)`` on a read-only unit of work (the DataLoader pattern). A lone lookup waits for nothing:
its query starts on the next turn of the loop. Each caller gets the tenant as committed when that
query ran, which is after the caller asked, so nothing older than a lookup of its own would have
returned; an error of the query (registry unavailable) reaches every caller of the batch.
"""

from __future__ import annotations

import asyncio

from adapters.registry.sql import SqlUnitOfWorkFactory
from domain.errors import TenantNotFound
from domain.tenant import Tenant
from domain.usecases import GetTenant

MAX_BATCH = 100


class BatchedGetTenant(GetTenant):
    """``GetTenant`` (same call, same TenantNotFound) with concurrent lookups batched."""

    def __init__(self, uow: SqlUnitOfWorkFactory, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(uow)
        self._sql_uow = uow
        self.max_batch = max_batch
        self.queries = 0  # registry queries made (tests, benchmarks)
        self._waiting: dict[str, list[asyncio.Future[Tenant | None]]] = {}
        self._flush_scheduled = False
        self._reads: set[asyncio.Task[None]] = set()

    async def __call__(self, tenant_id: str) -> Tenant:
        tenant = await self._lookup(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id!r}")
        return tenant

    async def _lookup(self, tenant_id: str) -> Tenant | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Tenant | None] = loop.create_future()
        self._waiting.setdefault(tenant_id, []).append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        waiting, self._waiting = self._waiting, {}
        ids = list(waiting)
        for start in range(0, len(ids), self.max_batch):
            batch = {tenant_id: waiting[tenant_id] for tenant_id in ids[start : start + self.max_batch]}
            task = asyncio.ensure_future(self._read(batch))
            self._reads.add(task)  # a strong reference until it is done
            task.add_done_callback(self._reads.discard)

    async def _read(self, batch: dict[str, list[asyncio.Future[Tenant | None]]]) -> None:
        self.queries += 1
        try:
            async with self._sql_uow(read_only=True) as uow:
                found = await uow.tenants.get_many(list(batch))
        except BaseException as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():  # a caller that went away has a cancelled future
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for tenant_id, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(tenant_id))
