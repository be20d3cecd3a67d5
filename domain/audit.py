"""The audit trail: who did what to a tenant, when, and with what result.

Events come from two places. The service records every state-changing request (the caller's
principal id, the action, the HTTP status) in a transaction of its own once the response is
decided; the provisioning runner records each finished step and the end of each run in the same
transaction as the step's outputs, so the trail and the registry never disagree about a step.
An event's ``detail`` holds codes, statuses and durations only: never a key, token or secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.errors import InvalidInput, TenantNotFound

if TYPE_CHECKING:  # ports imports AuditEvent from here
    from domain.ports import UnitOfWorkFactory

MAX_EVENTS_PAGE = 200

# Actors that are not a caller's principal id ("key_..." or "jwt:<issuer>#<sub>").
SYSTEM_ACTOR = "system"
WORKER_ACTOR_PREFIX = "worker:"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    tenant_id: str | None  # None for a request that names no (valid) tenant
    at: datetime
    actor: str
    action: str  # "tenant.create", "step.user_pool", "tenant.active", ...
    outcome: str  # "ok" | "accepted" | "refused" | "error"
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    id: int | None = None  # assigned by the registry; increases with every event


def worker_actor(worker_id: str | None) -> str:
    return WORKER_ACTOR_PREFIX + worker_id if worker_id else SYSTEM_ACTOR


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[AuditEvent]
    next_after_id: int | None


class RecordAuditEvent:
    """Write one event in a transaction of its own (the request's outcome is already decided)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, event: AuditEvent) -> None:
        async with self._uow() as uow:
            await uow.events.add(event)
            await uow.commit()


class ListTenantEvents:
    """A tenant's events, oldest first, in pages keyed on the event id.

    Events outlive their tenant: a deleted tenant's tombstone keeps its history readable. An id
    the registry never had a tenant under is unknown (TenantNotFound), like for every other read
    of a tenant, even when refused requests naming it were recorded (they stay in the table).
    """

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, tenant_id: str, *, limit: int, after_id: int | None) -> EventPage:
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_EVENTS_PAGE}")
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            items = await uow.events.list_for_tenant(tenant_id, limit=limit + 1, after_id=after_id)
        more = len(items) > limit
        items = items[:limit]
        return EventPage(items, items[-1].id if more and items else None)
