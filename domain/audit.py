"""The audit trail: who did what to a tenant, when, and with what result.

Events come from two places. The service records every state-changing request (the caller's
principal id, the action, the HTTP status) in a transaction of its own once the response is
decided; the provisioning runner records each finished step and the end of each run in the same
transaction as the step's outputs, so the trail and the registry never disagree about a step.
An event's ``detail`` holds codes, statuses and durations only: never a key, token or secret.

The values live here; the use cases that record and list them (RecordAuditEvent,
ListTenantEvents) are in domain/usecases.py, which may import the ports (this module may not:
domain/ports.py imports AuditEvent from here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
