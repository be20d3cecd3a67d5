"""The orphan sweep: AWS resources the service created that the registry does not account for.

Orphans are what adoption cannot always prevent (a pool created twice when a lost response met a
name collision, a registry restored from an older backup, a tombstoned tenant whose teardown was
interrupted before it was recorded). The sweep finds them by the ownership tag and, when asked,
deletes them in the order teardown uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from domain.errors import CloudNotFound, DomainError, InvalidInput
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID, ResourceNames
from domain.ports import CloudResource, UnitOfWorkFactory
from domain.provisioning import ROLE_KINDS, Gateways, ProvisioningSettings
from domain.tenant import Cell, SettingsStatus, Tenant, TenantStatus

USER_POOL, IDENTITY_POOL, IAM_ROLE, SECRET = "user_pool", "identity_pool", "iam_role", "secret"
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


# Which output records the resource of each slot (domain/provisioning.py); roles: ROLE_KINDS.
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
        cell, gw = self._cell, self._gw
        roles = await gw.iam.list_owned_roles(cell, path_prefix=self._settings.role_path)
        identity_pools = await gw.identity_pools.list_owned_identity_pools(cell)
        user_pools = await gw.user_pools.list_owned_user_pools(cell)
        secrets = await gw.secrets.list_owned_secrets(cell) if gw.secrets is not None else []
        found: list[_Found] = []
        # Teardown order (AWS-FACTS.md): roles, then identity pools, then user pools; secrets
        # depend on nothing.
        kinds = ((IAM_ROLE, roles), (IDENTITY_POOL, identity_pools), (USER_POOL, user_pools), (SECRET, secrets))
        for kind, resources in kinds:
            ours = [_Found(kind, r) for r in resources if self._is_ours(kind, r)]
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
        if names is None:
            return False
        if kind == USER_POOL:
            return resource.name == names.user_pool
        if kind == IDENTITY_POOL:
            return resource.name == names.identity_pool
        if kind == SECRET:
            # The primary app client's secret, or another client's (<prefix>/<tenant>/app-client/<client>/secret).
            return (
                resource.name == names.client_secret
                or names.client_of_secret(resource.name) is not None
                or names.provider_of_secret(resource.name) is not None  # a tenant identity provider's
            )
        # The authenticated/unauthenticated roles, or one of a tier's extra [roles].
        return resource.name.casefold() in {names.role(k).casefold() for k in ROLE_KINDS} or (
            names.extra_role_of(resource.name) is not None
        )

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
        deleters: dict[str, Callable[[CloudResource], Awaitable[None]]] = {
            IAM_ROLE: self._delete_role,
            IDENTITY_POOL: self._delete_identity_pool,
            USER_POOL: self._delete_user_pool,
            SECRET: self._delete_secret,
        }
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
            await deleters[item.kind](item.resource)
        except CloudNotFound:
            pass  # already gone: counts as deleted
        except DomainError as exc:
            return self._entry(item, reason, f"{FAILED}: {exc.code}")
        return self._entry(item, reason, DELETED)

    async def _delete_role(self, role: CloudResource) -> None:
        iam, cell = self._gw.iam, self._cell
        # IAM refuses to delete a role that still has inline policies.
        for policy in await iam.list_role_policies(cell, role_name=role.id):
            try:
                await iam.delete_role_policy(cell, role_name=role.id, policy_name=policy)
            except CloudNotFound:
                pass
        await iam.delete_role(cell, name=role.id)

    async def _delete_secret(self, secret: CloudResource) -> None:
        assert self._gw.secrets is not None  # listed through it
        await self._gw.secrets.delete_secret(self._cell, arn_or_name=secret.id)

    async def _delete_identity_pool(self, pool: CloudResource) -> None:
        await self._gw.identity_pools.delete_identity_pool(self._cell, identity_pool_id=pool.id)

    async def _delete_user_pool(self, pool: CloudResource) -> None:
        user_pools, cell = self._gw.user_pools, self._cell
        domain = pool.extra.get("domain")
        if domain:
            # DeleteUserPool fails while the pool still has a domain.
            try:
                await user_pools.delete_domain(cell, pool_id=pool.id, domain=domain)
            except CloudNotFound:
                pass  # the domain is gone; if the pool is too, the calls below say so
        if pool.extra.get("deletion_protection", "ACTIVE") != "INACTIVE":
            await user_pools.set_deletion_protection(cell, pool_id=pool.id, active=False)
        await user_pools.delete_user_pool(cell, pool_id=pool.id)
