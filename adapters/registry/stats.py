"""Cheap read-only aggregates of the registry, for the /metrics scrape."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.errors import all_errors_unavailable
from adapters.registry.tables import jobs, tenants


@dataclass(frozen=True, slots=True)
class RegistryStats:
    tenants_by_status: dict[str, int]
    jobs_waiting: int
    oldest_waiting_job_created_at: datetime | None


async def registry_stats(engine: AsyncEngine, *, timeout_s: float = 5.0) -> RegistryStats:
    """Tenants per status (one ``COUNT ... GROUP BY``) and the pending jobs: how many, and when
    the oldest was enqueued. Raises ``RegistryUnavailable`` when the registry does not answer."""
    with all_errors_unavailable():
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            rows = await conn.execute(select(tenants.c.status, func.count()).group_by(tenants.c.status))
            by_status = {str(status): int(count) for status, count in rows}
            waiting = (
                await conn.execute(
                    select(func.count(), func.min(jobs.c.created_at)).where(jobs.c.state == "pending")
                )
            ).one()
    return RegistryStats(by_status, int(waiting[0]), waiting[1])
