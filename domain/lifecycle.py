"""Lifecycle events: what happened to a tenant, for the world outside the service.

An event is written to the registry's outbox (``uow.outbox.add``) in the same transaction as the
state change it describes, so a committed change always has its event and a rolled-back one never
does; a dispatcher then delivers it to every configured destination (an EventBridge bus, signed
webhooks), at least once. Receivers de-duplicate on ``id``.

``detail`` is a summary of the tenant: tier, status, cell, the public resource ids and, on
failure, the error's code and step. Never a secret, a key or an error message (messages can quote
AWS text; codes cannot).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.tenant import LastError, Tenant

PROVISIONING_STARTED = "tenant.provisioning.started"
PROVISIONING_SUCCEEDED = "tenant.provisioning.succeeded"
PROVISIONING_FAILED = "tenant.provisioning.failed"
DEPROVISIONING_STARTED = "tenant.deprovisioning.started"
DEPROVISIONED = "tenant.deprovisioned"
DEPROVISIONING_FAILED = "tenant.deprovisioning.failed"

EVENT_TYPES = (
    PROVISIONING_STARTED,
    PROVISIONING_SUCCEEDED,
    PROVISIONING_FAILED,
    DEPROVISIONING_STARTED,
    DEPROVISIONED,
    DEPROVISIONING_FAILED,
)


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    type: str
    tenant_id: str
    occurred_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown lifecycle event type {self.type!r}")

    def envelope(self) -> dict[str, Any]:
        """The JSON document every destination receives (a webhook's body, EventBridge's Detail)."""
        return {
            "id": self.id,
            "type": self.type,
            "tenant_id": self.tenant_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "detail": self.detail,
        }


def tenant_summary(tenant: Tenant, error: LastError | None = None) -> dict[str, Any]:
    resources = {k: v for k, v in tenant.public_resources().items() if v is not None}
    summary: dict[str, Any] = {
        "tier": tenant.spec.tier,
        "status": tenant.status.value,
        "resources": resources,
    }
    if error is not None:
        summary["last_error"] = {"code": error.code, "step": error.step}
    return summary


def lifecycle_event(event_type: str, tenant: Tenant, now: datetime, error: LastError | None = None) -> LifecycleEvent:
    return LifecycleEvent(event_type, tenant.tenant_id, now, tenant_summary(tenant, error))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed delivery is tried again: capped exponential backoff with jitter
    (after the n-th failure, a delay drawn from [d/2, d] with d = min(cap, base * 2^(n-1)): the
    jitter spreads a burst of retries, the lower bound keeps the backoff growing), and given up (``dead``)
    after ``max_attempts`` attempts in all."""

    max_attempts: int = 12
    base_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first failure)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        draw: float = (rng or random).uniform(0.5, 1.0)
        return float(ceiling * draw)

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
