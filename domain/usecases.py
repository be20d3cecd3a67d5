"""Use cases behind the HTTP API. Each states its business rules in its docstring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import InvalidInput, TenantConflict, TenantNotFound, UnknownTier
from domain.naming import validate_tenant_id
from domain.ports import Clock, UnitOfWorkFactory
from domain.tenant import Cell, JobKind, Tenant, TenantSpec, TenantStatus, new_tenant
from domain.tiers import TierTemplate

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    tenant: Tenant
    # True when this request changed something (created, or started an operation).
    changed: bool


class OnboardTenant:
    """Register a tenant and queue its provisioning.

    - ``tenant_id`` follows the naming rule and ``tier`` names a template; an ``admin_email``
      needs a tier with an admin group.
    - The same spec again returns the tenant as it is (the request is safe to retry); a
      different spec for an existing id is a conflict. Ids of deleted tenants are not reused:
      the tombstone keeps the id, and a new onboarding under it is a conflict.
    - The tenant row and its job are written in one transaction: nothing is half-registered.
    """

    def __init__(self, uow: UnitOfWorkFactory, tiers: Mapping[str, TierTemplate], clock: Clock, cell: Cell) -> None:
        self._uow = uow
        self._tiers = tiers
        self._clock = clock
        self._cell = cell

    def validate(self, spec: TenantSpec) -> None:
        validate_tenant_id(spec.tenant_id)
        template = self._tiers.get(spec.tier)
        if template is None:
            raise UnknownTier(f"unknown tier {spec.tier!r}; known tiers: {', '.join(sorted(self._tiers))}")
        if spec.admin_email is not None and template.admin_group is None:
            raise InvalidInput("admin_email", f"tier {spec.tier!r} has no admin group to put an admin user in")

    async def __call__(self, spec: TenantSpec) -> Outcome:
        self.validate(spec)
        existing = await self._existing(spec)
        if existing is not None:
            return existing
        now = self._clock.now()
        tenant = new_tenant(spec, self._cell, now)
        try:
            async with self._uow() as uow:
                await uow.tenants.add(tenant)
                await uow.jobs.enqueue(spec.tenant_id, JobKind.PROVISION, now)
                await uow.commit()
        except TenantConflict:
            # Lost a race with a concurrent identical (or not) request: judge against the winner.
            existing = await self._existing(spec)
            if existing is None:
                raise
            return existing
        return Outcome(tenant, changed=True)

    async def _existing(self, spec: TenantSpec) -> Outcome | None:
        async with self._uow() as uow:
            tenant = await uow.tenants.get(spec.tenant_id)
        if tenant is None:
            return None
        if tenant.status == TenantStatus.DELETED:
            raise TenantConflict(
                f"tenant {spec.tenant_id!r} was deleted; tenant ids are not reused", status=tenant.status.value
            )
        if tenant.spec != spec:
            raise TenantConflict(
                f"tenant {spec.tenant_id!r} already exists with a different specification", status=tenant.status.value
            )
        return Outcome(tenant, changed=False)


class GetTenant:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, tenant_id: str) -> Tenant:
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id!r}")
        return tenant


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Tenant]
    next_after: str | None


class ListTenants:
    """Tenants in tenant_id order, filtered by status and tier; keyset pagination, so a page
    costs the same wherever it is in the list."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, *, status: str | None, tier: str | None, limit: int, after: str | None) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
        if status is not None and status not in {s.value for s in TenantStatus}:
            raise InvalidInput("status", f"must be one of {', '.join(s.value for s in TenantStatus)}")
        async with self._uow() as uow:
            items = await uow.tenants.list(status=status, tier=tier, limit=limit + 1, after=after)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].tenant_id if more and items else None)


class DeleteTenant:
    """Queue the teardown of a tenant.

    Allowed from every state: a tenant still provisioning stops at its next step boundary. A
    deleted tenant is returned as it is; a tenant already deprovisioning (for example after a
    failed teardown) gets its teardown queued again.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, tenant_id: str) -> Outcome:
        now = self._clock.now()
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            if tenant.status == TenantStatus.DELETED:
                return Outcome(tenant, changed=False)
            tenant.transition(TenantStatus.DEPROVISIONING, now)
            tenant.last_error = None
            await uow.tenants.save(tenant)
            await uow.jobs.enqueue(tenant_id, JobKind.DEPROVISION, now)
            await uow.commit()
        return Outcome(tenant, changed=True)


class RetryTenant:
    """Resume a failed provisioning from the steps already recorded. Only from ``failed``."""

    def __init__(self, uow: UnitOfWorkFactory, tiers: Mapping[str, TierTemplate], clock: Clock) -> None:
        self._uow = uow
        self._tiers = tiers
        self._clock = clock

    async def __call__(self, tenant_id: str) -> Outcome:
        now = self._clock.now()
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            if tenant.status != TenantStatus.FAILED:
                raise TenantConflict(
                    f"only a failed tenant can be retried; {tenant_id!r} is {tenant.status.value}",
                    status=tenant.status.value,
                )
            if tenant.spec.tier not in self._tiers:
                raise UnknownTier(f"tier {tenant.spec.tier!r} is no longer defined; it cannot be retried")
            tenant.transition(TenantStatus.PROVISIONING, now)
            tenant.last_error = None
            await uow.tenants.save(tenant)
            await uow.jobs.enqueue(tenant_id, JobKind.PROVISION, now)
            await uow.commit()
        return Outcome(tenant, changed=True)
