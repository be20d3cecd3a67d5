"""The Tenant entity, its spec and its state machine."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.errors import InvalidTransition
from domain.tenant_settings import TenantSettings


class TenantStatus(str, enum.Enum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    FAILED = "failed"
    DEPROVISIONING = "deprovisioning"
    DELETED = "deleted"


# ARCHITECTURE.md "State and concurrency": provisioning -> active | failed; failed -> provisioning
# (retry); any state -> deprovisioning -> deleted. A failed teardown stays deprovisioning and is
# retried by DELETE again.
_TRANSITIONS: dict[TenantStatus, frozenset[TenantStatus]] = {
    TenantStatus.PROVISIONING: frozenset({TenantStatus.ACTIVE, TenantStatus.FAILED, TenantStatus.DEPROVISIONING}),
    TenantStatus.ACTIVE: frozenset({TenantStatus.DEPROVISIONING}),
    TenantStatus.FAILED: frozenset({TenantStatus.PROVISIONING, TenantStatus.DEPROVISIONING}),
    TenantStatus.DEPROVISIONING: frozenset({TenantStatus.DEPROVISIONING, TenantStatus.DELETED}),
    TenantStatus.DELETED: frozenset(),
}


class JobKind(str, enum.Enum):
    PROVISION = "provision"
    DEPROVISION = "deprovision"
    # Apply changed per-tenant settings to a live tenant (PATCH /v1/tenants/{id}).
    UPDATE = "update"


class SettingsStatus(str, enum.Enum):
    """Where a tenant's per-tenant settings stand against AWS: ``applied``; ``pending`` while a
    PATCH's update job runs (the tenant stays ``active``); ``failed`` when it failed (see
    ``last_error``; another PATCH, even ``{}``, applies them again)."""

    APPLIED = "applied"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """What the caller asked for. Two requests with equal specs are the same request."""

    tenant_id: str
    tier: str
    display_name: str
    admin_email: str | None = None
    # Per-tenant settings (URLs, extra tags, identity providers); never a secret.
    settings: TenantSettings = field(default_factory=TenantSettings)


@dataclass(frozen=True, slots=True)
class Cell:
    """The AWS account and Region a tenant lives in."""

    account_id: str
    region: str


@dataclass(frozen=True, slots=True)
class LastError:
    code: str
    message: str
    step: str | None = None


# Keys of the public ``resources`` object (API.md); other recorded outputs stay internal.
PUBLIC_RESOURCE_KEYS = (
    "user_pool_id",
    "user_pool_arn",
    "app_client_id",
    "identity_pool_id",
    "authenticated_role_arn",
    "unauthenticated_role_arn",
    "issuer_url",
    "hosted_ui_domain",
    # Where a confidential app client's secret is kept (AWS Secrets Manager); never the secret.
    "app_client_secret_arn",
    # Every app client by its name in the tier template (-> id), and each confidential client's
    # secret ARN (-> ARN); computed from the outputs of the app client and client secret steps.
    "app_clients",
    "app_client_secret_arns",
)


@dataclass(slots=True)
class Tenant:
    spec: TenantSpec
    cell: Cell
    status: TenantStatus
    created_at: datetime
    updated_at: datetime
    last_error: LastError | None = None
    # Every step output recorded so far (ids, ARNs, names), keyed by output name.
    outputs: dict[str, Any] = field(default_factory=dict)
    # Names of plan steps that have finished (provisioning) or been torn down (teardown).
    completed_steps: list[str] = field(default_factory=list)
    settings_status: SettingsStatus = SettingsStatus.APPLIED

    @property
    def tenant_id(self) -> str:
        return self.spec.tenant_id

    def transition(self, to: TenantStatus, now: datetime) -> None:
        if to not in _TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"tenant {self.tenant_id!r} is {self.status.value}; cannot move to {to.value}",
                status=self.status.value,
            )
        self.status = to
        self.updated_at = now

    def public_resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = {"account_id": self.cell.account_id, "region": self.cell.region}
        for key in PUBLIC_RESOURCE_KEYS:
            resources[key] = self.outputs.get(key)
        # The primary client is also app_client_id.
        clients = dict(self.outputs.get("extra_app_client_ids") or {})
        if self.outputs.get("app_client_id"):
            clients = {self.outputs.get("primary_app_client") or "default": self.outputs["app_client_id"], **clients}
        resources["app_clients"] = clients or None
        resources["app_client_secret_arns"] = self.outputs.get("app_client_secret_arns") or None
        return resources

    def copy(self) -> Tenant:
        return replace(self, outputs=copy.deepcopy(self.outputs), completed_steps=list(self.completed_steps))


def new_tenant(spec: TenantSpec, cell: Cell, now: datetime) -> Tenant:
    return Tenant(spec=spec, cell=cell, status=TenantStatus.PROVISIONING, created_at=now, updated_at=now)
