"""Use cases behind the HTTP API. Each states its business rules in its docstring."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from domain.audit import MAX_EVENTS_PAGE, AuditEvent, EventPage
from domain.errors import InvalidInput, TenantConflict, TenantNotFound, UnknownTier
from domain.lifecycle import DEPROVISIONING_STARTED, PROVISIONING_STARTED, lifecycle_event
from domain.naming import ResourceNames, extra_tag_room, normalize_display_name, ownership_tags, validate_tenant_id
from domain.ports import Clock, SecretStore, SecretText, UnitOfWorkFactory
from domain.tenant import Cell, JobKind, SettingsStatus, Tenant, TenantSpec, TenantStatus, new_tenant
from domain.tenant_settings import TenantSettings, merge_patch, parse_settings
from domain.tiers import TierTemplate, template_tags

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    tenant: Tenant
    # True when this request changed something (created, or started an operation).
    changed: bool


class OnboardTenant:
    """Register a tenant and queue its provisioning.

    - ``tenant_id`` follows the naming rule and ``tier`` names a template; an ``admin_email``
      needs a tier with an admin group; ``display_name`` follows its rule and is stored trimmed
      (domain/naming.py ``normalize_display_name``).
    - The same spec again returns the tenant as it is (the request is safe to retry; display
      names are compared trimmed, so "Acme " repeats "Acme"); a different spec for an
      existing id is a conflict. Ids of deleted tenants are not reused:
      the tombstone keeps the id, and a new onboarding under it is a conflict.
    - The tenant row and its job are written in one transaction: nothing is half-registered.
    - Identity providers' client secrets go to AWS Secrets Manager (named per tenant and
      provider, ownership-tagged) *before* that transaction, so the worker finds them there; the
      registry keeps only their ARNs. A repeated request is the same request only if its secrets
      equal the stored ones (compared in constant time; nothing derived from a secret is kept).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        tiers: Mapping[str, TierTemplate],
        clock: Clock,
        cell: Cell,
        *,
        secrets: SecretStore | None = None,
        resource_prefix: str = "tenants",
    ) -> None:
        self._uow = uow
        self._tiers = tiers
        self._clock = clock
        self._cell = cell
        self._secrets = secrets
        self._prefix = resource_prefix

    def validate(self, spec: TenantSpec) -> None:
        validate_tenant_id(spec.tenant_id)
        template = self._tiers.get(spec.tier)
        if template is None:
            raise UnknownTier(f"unknown tier {spec.tier!r}; known tiers: {', '.join(sorted(self._tiers))}")
        if spec.admin_email is not None and template.admin_group is None:
            raise InvalidInput("admin_email", f"tier {spec.tier!r} has no admin group to put an admin user in")
        check_settings_fit(spec.settings, template)

    async def __call__(self, spec: TenantSpec, provider_secrets: Mapping[str, str] | None = None) -> Outcome:
        """``provider_secrets``: provider name -> client secret, as parsed from the request."""
        spec = replace(spec, display_name=normalize_display_name(spec.display_name))
        self.validate(spec)
        secrets = dict(provider_secrets or {})
        existing = await self._existing(spec, secrets)
        if existing is not None:
            return existing
        spec = await store_provider_secrets(self._secrets, self._cell, self._prefix, spec, secrets, self._tiers.get(spec.tier))
        now = self._clock.now()
        tenant = new_tenant(spec, self._cell, now)
        try:
            async with self._uow() as uow:
                await uow.tenants.add(tenant)
                await uow.jobs.enqueue(spec.tenant_id, JobKind.PROVISION, now)
                await uow.outbox.add(lifecycle_event(PROVISIONING_STARTED, tenant, now))
                await uow.commit()
        except TenantConflict:
            # Lost a race with a concurrent identical (or not) request: judge against the winner.
            existing = await self._existing(spec, secrets)
            if existing is None:
                raise
            return existing
        return Outcome(tenant, changed=True)

    async def _existing(self, spec: TenantSpec, secrets: dict[str, str]) -> Outcome | None:
        async with self._uow() as uow:
            tenant = await uow.tenants.get(spec.tenant_id)
        if tenant is None:
            return None
        if tenant.status == TenantStatus.DELETED:
            raise TenantConflict(
                f"tenant {spec.tenant_id!r} was deleted; tenant ids are not reused", status=tenant.status.value
            )
        if not await self._same_request(tenant, spec, secrets):
            raise TenantConflict(
                f"tenant {spec.tenant_id!r} already exists with a different specification", status=tenant.status.value
            )
        return Outcome(tenant, changed=False)

    async def _same_request(self, tenant: Tenant, spec: TenantSpec, secrets: dict[str, str]) -> bool:
        stored = tenant.spec
        if replace(stored, settings=TenantSettings()) != replace(spec, settings=TenantSettings()):
            return False
        if not stored.settings.same_request_as(spec.settings):
            return False
        for provider in stored.settings.identity_providers:
            if not provider.has_secret:
                continue
            sent = secrets.get(provider.name)
            if sent is None or self._secrets is None or provider.client_secret_arn is None:
                return False
            held = await self._secrets.read_secret(self._cell, arn_or_name=provider.client_secret_arn)
            if not hmac.compare_digest(held.reveal().encode(), sent.encode()):
                return False
        return True


class GetTenant:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, tenant_id: str) -> Tenant:
        async with self._uow(read_only=True) as uow:
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
        async with self._uow(read_only=True) as uow:
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
            await uow.outbox.add(lifecycle_event(DEPROVISIONING_STARTED, tenant, now))
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
            await uow.outbox.add(lifecycle_event(PROVISIONING_STARTED, tenant, now))
            await uow.commit()
        return Outcome(tenant, changed=True)


def check_settings_fit(settings: TenantSettings, template: TierTemplate) -> None:
    """What depends on the tier: AWS's 50 tags per resource hold the ownership tags, the
    template's and the tenant's together."""
    room = extra_tag_room(template.tags)
    extra = [key for key in settings.tags if key not in template.tags]
    if len(extra) > room:
        raise InvalidInput("tags", f"at most {room} extra tags for tier {template.name!r} (AWS allows 50 per resource)")
    # Cognito uses the URLs only for the code and implicit flows: refuse URLs that would go nowhere.
    browser_clients = any(c.oauth_flows and not c.is_machine for c in template.clients.values())
    if (settings.callback_urls or settings.logout_urls) and not browser_clients:
        field = "callback_urls" if settings.callback_urls else "logout_urls"
        raise InvalidInput(field, f"tier {template.name!r} has no app client with the code or implicit flow to use them")


async def store_provider_secrets(
    store: SecretStore | None,
    cell: Cell,
    prefix: str,
    spec: TenantSpec,
    secrets: Mapping[str, str],
    template: TierTemplate | None,
) -> TenantSpec:
    """Put each provider's client secret in Secrets Manager under its deterministic name
    (creating it, or writing a new version of our own), and return ``spec`` with the ARNs."""
    if not secrets:
        return spec
    if store is None:
        raise InvalidInput("identity_providers", "this deployment has no secret store (AWS Secrets Manager) for client secrets")
    names = ResourceNames(prefix, spec.tenant_id)
    tags = template_tags(template, ownership_tags(spec.tenant_id), spec.settings.tags)
    providers = []
    for provider in spec.settings.identity_providers:
        if provider.name in secrets:
            stored = await store.put_client_secret(
                cell,
                name=names.identity_provider_secret(provider.name),
                secret_value=SecretText(secrets[provider.name]),
                tags=tags,
                description=f"Client secret of identity provider {provider.name} of tenant {spec.tenant_id}",
            )
            provider = replace(provider, client_secret_arn=stored.arn or stored.id)
        providers.append(provider)
    return replace(spec, settings=replace(spec.settings, identity_providers=tuple(providers)))


PATCHABLE = ("display_name", "callback_urls", "logout_urls", "tags", "identity_providers")


class UpdateTenant:
    """Change a live tenant's settings in place (``PATCH``, RFC 7396 merge patch).

    - Only an ``active`` tenant, and only while no earlier change is still being applied
      (``settings_status`` ``pending``); otherwise a conflict. A change that failed may be
      followed by another, or by ``{}`` to apply the same settings again.
    - ``display_name`` (same rule as at onboarding, stored trimmed; it cannot be removed),
      ``callback_urls``, ``logout_urls``, ``tags`` and ``identity_providers`` may change; in
      ``identity_providers`` (keyed by name) ``null`` removes a provider, a member changes one
      field, and a provider keeps its client secret unless a new one is sent.
    - New secrets go to Secrets Manager first; then the settings, ``settings_status: pending``
      and an update job are written in one transaction. The worker converges AWS on them.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        tiers: Mapping[str, TierTemplate],
        clock: Clock,
        *,
        secrets: SecretStore | None = None,
        resource_prefix: str = "tenants",
    ) -> None:
        self._uow = uow
        self._tiers = tiers
        self._clock = clock
        self._secrets = secrets
        self._prefix = resource_prefix

    @staticmethod
    def _check_changeable(tenant: Tenant) -> None:
        if tenant.status != TenantStatus.ACTIVE:
            raise TenantConflict(
                f"only an active tenant's settings can change; {tenant.tenant_id!r} is {tenant.status.value}",
                status=tenant.status.value,
            )
        if tenant.settings_status == SettingsStatus.PENDING:
            raise TenantConflict(
                f"an earlier change of {tenant.tenant_id!r} is still being applied; retry once settings_status is not pending",
                status=tenant.status.value,
            )

    async def __call__(self, tenant_id: str, patch: Mapping[str, Any]) -> Outcome:
        async with self._uow(read_only=True) as uow:
            tenant = await uow.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id!r}")
        self._check_changeable(tenant)
        unknown = sorted(set(patch) - set(PATCHABLE))
        if unknown:
            raise InvalidInput(unknown[0], "cannot be changed by PATCH")
        # A stored name is kept as it is; a new one follows the rule (and is stored trimmed).
        display_name = tenant.spec.display_name
        if "display_name" in patch:
            if patch["display_name"] is None:
                raise InvalidInput("display_name", "cannot be removed")
            display_name = normalize_display_name(patch["display_name"])
        template = self._tiers.get(tenant.spec.tier)
        if template is None:
            raise UnknownTier(f"tier {tenant.spec.tier!r} is no longer defined; the tenant's settings cannot change")
        settings_patch = {key: patch[key] for key in PATCHABLE[1:] if key in patch}
        merged = merge_patch(tenant.spec.settings.public(), settings_patch)
        parsed = parse_settings(merged, stored=tenant.spec.settings)
        spec = replace(tenant.spec, display_name=display_name, settings=parsed.settings)
        check_settings_fit(spec.settings, template)
        spec = await store_provider_secrets(self._secrets, tenant.cell, self._prefix, spec, parsed.secrets, template)
        now = self._clock.now()
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            self._check_changeable(tenant)
            # Remembered until the update job has removed them and their secrets: once a provider
            # is gone from the pool, nothing else would name its secret after a crash.
            removed = set(tenant.spec.settings.provider_names) - set(spec.settings.provider_names)
            if removed:
                earlier = tenant.outputs.get("removed_identity_providers") or []
                tenant.outputs["removed_identity_providers"] = sorted(removed | set(earlier))
            tenant.spec = spec
            tenant.settings_status = SettingsStatus.PENDING
            tenant.last_error = None
            tenant.updated_at = now
            await uow.tenants.save(tenant)
            await uow.jobs.enqueue(tenant_id, JobKind.UPDATE, now)
            await uow.commit()
        return Outcome(tenant, changed=True)


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
