"""The orphan sweep: AWS resources the service created that the registry does not account for.

Orphans are what adoption cannot always prevent (a pool created twice when a lost response met a
name collision, a registry restored from an older backup, a tombstoned tenant whose teardown was
interrupted before it was recorded). The sweep finds them by the ownership tag and, when asked,
deletes them in the order teardown uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from domain.errors import CloudNotFound, DomainError, InvalidInput
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID, ResourceNames
from domain.ports import CloudResource, UnitOfWorkFactory
from domain.provisioning import AWS_KINDS, ROLE_KINDS, Gateways, ProvisioningSettings
from domain.provisioning.cloud import IAM_ROLE, IDENTITY_POOL, SECRET, USER_POOL
from domain.tenant import Cell, SettingsStatus, Tenant, TenantStatus

WOULD_DELETE, DELETED, SKIPPED = "would delete", "deleted", "skipped"
FAILED = "failed"  # reported as "failed: <AWS error code>"

# Tenants whose resources may exist in AWS before the registry records them (a create whose
# output is not written yet) or that teardown is about to delete: never touched by the sweep.
IN_PROGRESS = frozenset({TenantStatus.PROVISIONING, TenantStatus.DEPROVISIONING})
_REGISTRY_PAGE = 500

_KEEP, _ORPHAN, _SKIP = "keep", "orphan", "skip"


@dataclass(frozen=True, slots=True)
class SweepEntry:
    kind: str  # user_pool | identity_pool | iam_role | secret
    id: str  # pool id, role name, or secret ARN
    arn: str | None
    name: str
    tenant_id: str | None
    reason: str
    action: str  # would delete | deleted | failed: <code> | skipped

    @property
    def orphan(self) -> bool:
        return self.action != SKIPPED

    @property
    def remains(self) -> bool:
        """An orphan still in AWS after this sweep."""
        return self.orphan and self.action != DELETED


@dataclass(frozen=True, slots=True)
class SweepReport:
    cell: Cell
    applied: bool
    entries: tuple[SweepEntry, ...]

    @property
    def orphans(self) -> list[SweepEntry]:
        return [e for e in self.entries if e.orphan]

    @property
    def remaining(self) -> list[SweepEntry]:
        return [e for e in self.entries if e.remains]

    @property
    def skipped(self) -> list[SweepEntry]:
        return [e for e in self.entries if not e.orphan]

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.cell.account_id,
            "region": self.cell.region,
            "applied": self.applied,
            "orphans": len(self.orphans),
            "remaining": len(self.remaining),
            "skipped": len(self.skipped),
            "entries": [asdict(e) for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class _Found:
    kind: str
    resource: CloudResource

    @property
    def tenant_id(self) -> str | None:
        return self.resource.tags.get(TAG_TENANT_ID) or None


# Which output records the resource of each slot (domain/provisioning/resources.py); roles: ROLE_KINDS.
_POOL_SLOTS = {USER_POOL: "user_pool_id", IDENTITY_POOL: "identity_pool_id", SECRET: "app_client_secret_arn"}
_KIND_WORDS = {USER_POOL: "user pool", IDENTITY_POOL: "identity pool", SECRET: "app client secret"}


class SweepOrphans:
    """List (and with ``apply=True`` delete) the orphans of this deployment in one cell.

    - Only resources carrying the service's ownership tag (``tenants:managed-by``) *and* the
      deterministic name this deployment gives that tenant's resource (resource prefix; roles
      also under the role path) are considered. Untagged resources, and those of another
      deployment sharing the account under another prefix, are never listed or touched.
    - An owned resource is an orphan when the tenant named by its ``tenants:tenant-id`` tag is
      unknown to the registry or ``deleted``; or when the tenant records a different resource in
      that slot (a second user pool, say), or none at all although it is ``active``.
    - Tenants ``provisioning`` or ``deprovisioning`` are skipped entirely (a resource may be
      created and not yet recorded, or teardown will delete it); so is a resource of a ``failed``
      tenant in a slot it has not recorded yet, which a retry adopts. Skipped resources are
      reported, never deleted.
    - AWS is listed before the registry is read: a tenant is registered before any of its
      resources is created, so a resource listed belongs to a tenant the registry already shows.
      With ``apply``, each orphan's tenant is read again just before the delete.
    - ``apply=False`` changes nothing. ``apply=True`` deletes orphans in teardown order: roles
      (inline policies first), identity pools, user pools (hosted-UI domain first, then deletion
      protection lifted), then app client secrets (Secrets Manager, no recovery window). A
      resource already gone counts as deleted; an error on one resource is
      recorded as ``failed: <code>`` and the sweep goes on.
    """

    def __init__(
        self, gateways: Gateways, uow: UnitOfWorkFactory, cell: Cell, settings: ProvisioningSettings
    ) -> None:
        self._gw = gateways
        self._uow = uow
        self._cell = cell
        self._settings = settings

    async def __call__(self, *, apply: bool) -> SweepReport:
        found = await self._list_owned()
        tenants = await self._tenants({f.tenant_id for f in found if f.tenant_id})
        entries: list[SweepEntry] = []
        for item in found:
            verdict, reason = self._classify(item, tenants.get(item.tenant_id or ""))
            if verdict == _KEEP:
                continue
            if verdict == _SKIP:
                entries.append(self._entry(item, reason, SKIPPED))
            elif not apply:
                entries.append(self._entry(item, reason, WOULD_DELETE))
            else:
                entries.append(await self._delete_orphan(item, reason))
        return SweepReport(cell=self._cell, applied=apply, entries=tuple(entries))

    # -- finding -------------------------------------------------------------------------------

    async def _list_owned(self) -> list[_Found]:
        found: list[_Found] = []
        # In teardown order (the table's order): roles, identity pools, user pools, secrets.
        for kind in AWS_KINDS.values():
            resources = await kind.list_owned(self._gw, self._cell, self._settings)
            ours = [_Found(kind.kind, r) for r in resources if self._is_ours(kind.kind, r)]
            found += sorted(ours, key=lambda f: (f.tenant_id or "", f.resource.name, f.resource.id))
        return found

    def _names(self, tenant_id: str | None) -> ResourceNames | None:
        if not tenant_id:
            return None
        try:
            return ResourceNames(self._settings.resource_prefix, tenant_id)
        except InvalidInput:
            return None  # not a tenant id this service could have written

    def _is_ours(self, kind: str, resource: CloudResource) -> bool:
        """Tagged by the service, and named as this deployment names that tenant's resource."""
        if resource.tags.get(TAG_MANAGED_BY) != MANAGED_BY_VALUE:
            return False
        names = self._names(resource.tags.get(TAG_TENANT_ID))
        return names is not None and AWS_KINDS[kind].is_named(names, resource)

    async def _tenants(self, wanted: set[str]) -> dict[str, Tenant]:
        """The registry's tenants among ``wanted``, read page by page (keyset pagination)."""
        tenants: dict[str, Tenant] = {}
        after: str | None = None
        while wanted:
            async with self._uow() as uow:
                page = await uow.tenants.list(status=None, tier=None, limit=_REGISTRY_PAGE, after=after)
            tenants.update({t.tenant_id: t for t in page if t.tenant_id in wanted})
            if len(page) < _REGISTRY_PAGE:
                break
            after = page[-1].tenant_id
        return tenants

    def _classify(self, item: _Found, tenant: Tenant | None) -> tuple[str, str]:
        if tenant is None:
            return _ORPHAN, f"tenant {item.tenant_id!r} is not in the registry"
        if tenant.status == TenantStatus.DELETED:
            return _ORPHAN, f"tenant {tenant.tenant_id!r} is deleted"
        if tenant.status in IN_PROGRESS:
            return _SKIP, f"tenant {tenant.tenant_id!r} is {tenant.status.value} (in progress)"
        resource, outputs = item.resource, tenant.outputs
        names = self._names(tenant.tenant_id)
        assert names is not None  # _is_ours checked the name
        provider = names.provider_of_secret(resource.name) if item.kind == SECRET else None
        if provider is not None:
            # Kept while the tenant's settings name the provider; a secret left by a PATCH that
            # removed it, or by a request that crashed before its transaction, is an orphan.
            if tenant.settings_status == SettingsStatus.PENDING:
                return _SKIP, f"tenant {tenant.tenant_id!r} has a settings change in progress"
            if tenant.spec.settings.provider(provider) is not None:
                return _KEEP, ""
            return _ORPHAN, f"tenant {tenant.tenant_id!r} has no identity provider {provider!r}"
        extra_role = names.extra_role_of(resource.name) if item.kind == IAM_ROLE else None
        client = names.client_of_secret(resource.name) if item.kind == SECRET else None
        if extra_role is not None or client is not None:
            slot = "extra_role_arns" if extra_role is not None else "app_client_secret_arns"
            recorded = (outputs.get(slot) or {}).get(extra_role or client)
            if recorded is not None and recorded in (resource.arn, resource.id):
                return _KEEP, ""
            what = f"{extra_role} role" if extra_role is not None else f"secret of app client {client}"
        elif item.kind == IAM_ROLE:
            key = next(v for k, v in ROLE_KINDS.items() if names.role(k).casefold() == resource.name.casefold())
            recorded_name, recorded_arn = outputs.get(f"{key}_role_name"), outputs.get(f"{key}_role_arn")
            # By ARN when recorded: role names repeat across accounts, ARNs do not.
            if recorded_arn and resource.arn:
                if recorded_arn == resource.arn:
                    return _KEEP, ""
            elif (recorded_name or "").casefold() == resource.id.casefold():
                return _KEEP, ""
            recorded = recorded_arn or recorded_name
            what = f"{key} role"
        else:
            recorded = outputs.get(_POOL_SLOTS[item.kind])
            if recorded == resource.id:
                return _KEEP, ""
            what = _KIND_WORDS[item.kind]
        if recorded:
            return _ORPHAN, f"tenant {tenant.tenant_id!r} records another {what}: {recorded}"
        if tenant.status == TenantStatus.FAILED:
            return _SKIP, f"tenant {tenant.tenant_id!r} is failed and records no {what} yet (a retry adopts it)"
        return _ORPHAN, f"tenant {tenant.tenant_id!r} is {tenant.status.value} and records no {what}"

    def _entry(self, item: _Found, reason: str, action: str) -> SweepEntry:
        r = item.resource
        return SweepEntry(
            kind=item.kind, id=r.id, arn=r.arn, name=r.name, tenant_id=item.tenant_id, reason=reason, action=action
        )

    # -- deleting ------------------------------------------------------------------------------

    async def _delete_orphan(self, item: _Found, reason: str) -> SweepEntry:
        try:
            # The registry may have moved on since it was read (a tenant onboarded meanwhile
            # adopts a resource of its deterministic name): decide again on what it says now.
            tenant = None
            if item.tenant_id:
                async with self._uow() as uow:
                    tenant = await uow.tenants.get(item.tenant_id)
            verdict, now_reason = self._classify(item, tenant)
            if verdict != _ORPHAN:
                return self._entry(item, f"no longer an orphan: {now_reason or 'the tenant records it'}", SKIPPED)
            await AWS_KINDS[item.kind].delete(self._gw, self._cell, item.resource)
        except CloudNotFound:
            pass  # already gone: counts as deleted
        except DomainError as exc:
            return self._entry(item, reason, f"{FAILED}: {exc.code}")
        return self._entry(item, reason, DELETED)
