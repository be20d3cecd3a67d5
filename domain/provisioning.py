"""The provisioning plan of ARCHITECTURE.md and its teardown, as adopt-or-create steps.

Every step first looks for the resource it would create (by the id already recorded, else by its
deterministic name) and adopts it when it carries this tenant's ownership tags; only then does it
create. Its outputs are written to the registry the moment it finishes. A process killed between
an AWS create and that write therefore finds the resource again on the next run instead of
creating a second one.

The fast path: the first run of a fresh tenant creates without looking. Looking first doubles
the chain of dependent calls (ListUserPools before CreateUserPool, ListUserPoolClients before
CreateUserPoolClient, ListIdentityPools, GetRole ...), and on that run every look-up of a
resource named after the tenant is bound to find nothing of ours. Why, and exactly when:

- Only this service creates resources named after a tenant, only in a provisioning run of that
  tenant, and tenant ids are never reused (a deleted tenant keeps its tombstone). So before the
  tenant's first provisioning run none of its resources exists.
- A run is the first when its job is attempt 1 (every claim of a job counts one attempt, a lease
  taken over after a crash or a release at shutdown included) of the tenant's first job ever
  (``Job.first_for_tenant``: the job OnboardTenant writes in the same transaction as the tenant;
  jobs are kept once done), and the tenant has no recorded step or output. Any resumed run
  (attempt 2 and up), any RetryTenant job and any run without a job (fence) keeps adopt-first.
- Within that run a step creates without looking only on its first try. A step retried after an
  error (a lost response may have created the resource) looks first again, on every further try.
  Each resource is created by exactly one step, so one step's retry cannot be fooled by another's.
- A resource whose name is unique (IAM roles, groups, users, secrets) still adopts on
  AlreadyExists, with the ownership check. A foreign user pool or identity pool carrying our name
  (Cognito names are not unique) is never adopted nor touched: we create our own beside it.

Hence never duplicated (a create is skipped-lookup only when nothing of ours can exist) and never
orphaned (whatever a first run creates and fails to record, the next run, which is never a first
run, finds by name). The hosted-UI domain keeps its look-up: prefix domains are unique across
all AWS accounts, and the look-up is what explains a domain held by someone else.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.audit import AuditEvent, worker_actor
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound, DomainError, ResourceNotOwned, explain
from domain.lifecycle import (
    DEPROVISIONED,
    DEPROVISIONING_FAILED,
    PROVISIONING_FAILED,
    PROVISIONING_SUCCEEDED,
    lifecycle_event,
)
from domain.naming import ResourceNames, is_owned_by, ownership_tags
from domain.plan import PlanError, Step, release_dependents, run_plan
from domain.policies import render_role_policy, trust_policy
from domain.ports import (
    Clock,
    CloudResource,
    IamGateway,
    IdentityPoolGateway,
    Job,
    SecretStore,
    SecretText,
    StepObserver,
    UnitOfWork,
    UnitOfWorkFactory,
    UserPoolGateway,
)
from domain.tenant import JobKind, LastError, SettingsStatus, Tenant, TenantStatus
from domain.tenant_settings import TenantSettings
from domain.tiers import TENANT_ID_ATTRIBUTE, TierTemplate, template_tags

ROLE_KINDS = {"auth": "authenticated", "unauth": "unauthenticated"}

# True while a step runs its first try (set by _PlanRunner._attempt, per step task).
_FIRST_TRY: contextvars.ContextVar[bool] = contextvars.ContextVar("first_try", default=False)


@dataclass(frozen=True, slots=True)
class Gateways:
    user_pools: UserPoolGateway
    identity_pools: IdentityPoolGateway
    iam: IamGateway
    # Needed only by tiers whose app client has a secret (and to tear such secrets down).
    secrets: SecretStore | None = None


@dataclass(frozen=True, slots=True)
class ProvisioningSettings:
    resource_prefix: str = "tenants"
    role_path: str = "/tenants/"
    partition: str = "aws"
    # IAM policy ARN set as every tenant role's permissions boundary (None: no boundary).
    permissions_boundary: str | None = None
    # A step failing with a retryable AWS error (throttling, 5xx, a lost response) of a call that
    # was sent once (a create AWS cannot deduplicate) is run again, adopt-first, up to
    # step_attempts times with capped exponential backoff and full jitter. A call the SDK retried
    # already (CloudError.attempts > 1) had its budget there: one layer retries, never both.
    step_attempts: int = 8
    step_backoff_s: float = 0.2
    step_backoff_max_s: float = 5.0
    # Steps of one plan running at once; 0: every step whose dependencies are done (the default).
    plan_concurrency: int = 0


class Superseded(Exception):
    """The tenant left the state this run works for (e.g. a DELETE arrived): stop quietly."""


class LeaseLost(Superseded):
    """Another worker took the job over (our lease expired): stop without writing anything."""


def with_identity_providers(steps: list[Step], settings: TenantSettings | None) -> list[Step]:
    """The tenant's own identity providers go onto the pool after it exists and before any app
    client, since a client may only list providers the pool already has."""
    if settings is None or not settings.identity_providers:
        return steps
    placed: list[Step] = []
    for step in steps:
        if step.name.startswith("app_client"):
            step = Step(step.name, (*step.after, "identity_providers"))
        placed.append(step)
        if step.name == "user_pool":
            placed.append(Step("identity_providers", ("user_pool",)))
    return placed


def provisioning_steps(template: TierTemplate, *, with_admin: bool) -> list[Step]:
    clients = template.clients
    primary_name = template.primary_client
    primary = clients[primary_name]
    extras = {name: client for name, client in clients.items() if name != primary_name}
    steps = [Step("user_pool")]
    if template.resource_servers:
        # Before the clients that use their scopes: Cognito refuses a client with an unknown scope.
        steps.append(Step("resource_servers", ("user_pool",)))

    def client_deps(uses_scopes: bool) -> tuple[str, ...]:
        return ("user_pool", "resource_servers") if uses_scopes and template.resource_servers else ("user_pool",)

    steps.append(Step("app_client", client_deps(bool(primary.custom_scopes()))))
    if extras:
        # Every further client in one step, created concurrently, next to the primary one.
        steps.append(Step("app_clients", client_deps(any(c.custom_scopes() for c in extras.values()))))
    if any(client.generate_secret for client in clients.values()):
        secret_deps = (("app_client",) if primary.generate_secret else ()) + (
            ("app_clients",) if any(c.generate_secret for c in extras.values()) else ()
        )
        steps.append(Step("client_secret", secret_deps))
    if template.mfa != "OFF":
        steps.append(Step("user_pool_mfa", ("user_pool",)))
    if template.groups:
        steps.append(Step("groups", ("user_pool",)))
    if template.hosted_ui_domain:
        steps.append(Step("hosted_ui_domain", ("user_pool",)))
    if with_admin:
        steps.append(Step("admin_user", ("groups",)))
    pool_deps = ("app_client",) + (("app_clients",) if any(c.trusted_by_identity_pool for c in extras.values()) else ())
    steps += [
        Step("identity_pool", pool_deps),
        Step("auth_role", ("identity_pool",)),
        Step("auth_role_policy", ("auth_role",)),
    ]
    role_policies = ["auth_role_policy"]
    if template.allow_guest_identities:
        steps += [Step("unauth_role", ("identity_pool",)), Step("unauth_role_policy", ("unauth_role",))]
        role_policies.append("unauth_role_policy")
    if template.roles:
        steps.append(Step("extra_roles", ("identity_pool",)))
        role_policies.append("extra_roles")
        if any(group.role for group in template.groups):
            steps.append(Step("group_roles", ("groups", "extra_roles")))
    steps.append(Step("identity_pool_roles", tuple(role_policies)))
    return steps


# Teardown walks the plan in reverse. Deleting the user pool deletes its clients, groups and
# users; the identity pool and the roles are separate resources (AWS-FACTS.md "Ordering facts").
TEARDOWN_STEPS = [
    Step("delete_auth_role"),
    Step("delete_unauth_role"),
    Step("delete_extra_roles"),
    Step("delete_identity_pool", ("delete_auth_role", "delete_unauth_role", "delete_extra_roles")),
    Step("delete_hosted_ui_domain"),
    Step("delete_user_pool", ("delete_identity_pool", "delete_hosted_ui_domain")),
    # The secret is a copy of the app client's: nothing depends on it, so it goes at any time.
    Step("delete_client_secret"),
    # The providers themselves go with the pool; their client secrets are separate resources.
    Step("delete_identity_provider_secrets"),
]


def admin_username(template: TierTemplate, email: str) -> str:
    return email if "email" in template.username_attributes else "admin"


class _TenantRun:
    """The steps of one tenant, sharing the outputs recorded so far."""

    def __init__(
        self, tenant: Tenant, template: TierTemplate | None, gateways: Gateways, settings: ProvisioningSettings
    ) -> None:
        self.tenant = tenant
        self.spec = tenant.spec
        self.cell = tenant.cell
        self.template = template
        self.gw = gateways
        self.settings = settings
        self.names = ResourceNames(settings.resource_prefix, tenant.tenant_id)
        # The template's tags, under the ownership tags (which nothing may override).
        self.tags = template_tags(template, ownership_tags(tenant.tenant_id), tenant.spec.settings.tags)
        self.outputs: dict[str, Any] = dict(tenant.outputs)
        # The first run of a fresh tenant (module docstring): its steps skip their look-ups.
        self.fresh = False
        # Teardown steps that had nothing to delete of a resource the tier never makes: their
        # audit events say "skipped", not "ok" (see _skip_if_never_had).
        self.skipped: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    def _check_owned(self, resource: CloudResource, what: str) -> None:
        if not is_owned_by(resource.tags, self.spec.tenant_id):
            raise ResourceNotOwned(
                f"a {what} named {resource.name!r} already exists and does not carry this tenant's "
                "ownership tags; it was not created by this service for this tenant and will not be adopted"
            )

    def _owned(self, resource: CloudResource | None) -> bool:
        return resource is not None and is_owned_by(resource.tags, self.spec.tenant_id)

    def _may_skip_lookup(self) -> bool:
        """Create without looking: the first try of a step in the first run of a fresh tenant."""
        return self.fresh and _FIRST_TRY.get()

    async def _find_user_pool(self) -> CloudResource | None:
        found = None
        if self.outputs.get("user_pool_id"):
            found = await self.gw.user_pools.find_user_pool(
                self.cell, pool_id=self.outputs["user_pool_id"], name=self.names.user_pool
            )
        return found or await self.gw.user_pools.find_user_pool(self.cell, pool_id=None, name=self.names.user_pool)

    async def _find_identity_pool(self) -> CloudResource | None:
        found = None
        if self.outputs.get("identity_pool_id"):
            found = await self.gw.identity_pools.find_identity_pool(
                self.cell, pool_id=self.outputs["identity_pool_id"], name=self.names.identity_pool
            )
        return found or await self.gw.identity_pools.find_identity_pool(
            self.cell, pool_id=None, name=self.names.identity_pool
        )

    def _placeholder_values(self) -> dict[str, str]:
        return {
            "tenant_id": self.spec.tenant_id,
            "partition": self.settings.partition,
            "region": self.cell.region,
            "account_id": self.cell.account_id,
            "user_pool_id": self.outputs["user_pool_id"],
            "user_pool_arn": self.outputs["user_pool_arn"],
            "identity_pool_id": self.outputs["identity_pool_id"],
        }

    @property
    def _tpl(self) -> TierTemplate:
        assert self.template is not None
        return self.template

    @property
    def _secrets(self) -> SecretStore:
        if self.gw.secrets is None:
            raise DomainError(
                "this tier's app client has a secret, but no secret store (AWS Secrets Manager) is configured",
                code="secret_store_missing",
            )
        return self.gw.secrets

    # -- provisioning steps ------------------------------------------------------------------

    async def user_pool(self) -> dict[str, Any]:
        pool = None if self._may_skip_lookup() else await self._find_user_pool()
        if pool is not None:
            self._check_owned(pool, "user pool")
        else:
            pool = await self.gw.user_pools.create_user_pool(
                self.cell,
                name=self.names.user_pool,
                template=self._tpl,
                tags=self.tags,
                display_name=self.spec.display_name,
                tenant_id=self.spec.tenant_id,
            )
        # A pool made before every pool had custom:tenant_id (adopted on a retry) cannot take it.
        legacy = {} if pool.extra.get("tenant_id_attribute", True) else {"tenant_id_attribute": False}
        return {
            **legacy,
            "user_pool_id": pool.id,
            "user_pool_arn": pool.arn,
            "issuer_url": f"https://cognito-idp.{self.cell.region}.amazonaws.com/{pool.id}",
        }

    async def user_pool_mfa(self) -> dict[str, Any]:
        await self.gw.user_pools.configure_mfa(
            self.cell,
            pool_id=self.outputs["user_pool_id"],
            template=self._tpl,
            display_name=self.spec.display_name,
            tenant_id=self.spec.tenant_id,
        )
        return {}

    async def resource_servers(self) -> dict[str, Any]:
        pool_id = self.outputs["user_pool_id"]
        servers = self._tpl.resource_servers
        await asyncio.gather(
            *(self.gw.user_pools.ensure_resource_server(self.cell, pool_id=pool_id, server=server) for server in servers)
        )
        return {"resource_servers": [server.identifier for server in servers]}

    def _client_name(self, client: str) -> str:
        return self.names.named_app_client(client, primary=client == self._tpl.primary_client)

    def _client_urls(self) -> dict[str, Any]:
        """The tenant's own callback and logout URLs, when it has any: they replace the
        template's defaults on clients with the code or implicit flow."""
        settings = getattr(self.spec, "settings", None)
        return {
            "callback_urls": tuple(getattr(settings, "callback_urls", ()) or ()) or None,
            "logout_urls": tuple(getattr(settings, "logout_urls", ()) or ()) or None,
            # The tenant's own identity providers, allowed next to COGNITO (machine clients: COGNITO only).
            "identity_providers": tuple(getattr(settings, "provider_names", ()) or ()) or None,
        }

    async def _ensure_client(self, client: str) -> str:
        pool_id = self.outputs["user_pool_id"]
        name = self._client_name(client)
        client_id = None
        if not self._may_skip_lookup():
            client_id = await self.gw.user_pools.find_app_client(self.cell, pool_id=pool_id, name=name)
        if client_id is None:
            client_id = await self.gw.user_pools.create_app_client(
                self.cell, pool_id=pool_id, name=name, template=self._tpl, client=client, **self._client_urls()
            )
        return client_id

    def _client_ids(self) -> dict[str, str]:
        """Every app client recorded so far, by template name, the primary first. A step reads
        only the clients its dependencies made: the secrets of extra clients do not wait for a
        public primary one, which may not be recorded yet."""
        ids: dict[str, str] = {}
        if self.outputs.get("app_client_id"):
            ids[self.outputs.get("primary_app_client") or self._tpl.primary_client] = self.outputs["app_client_id"]
        ids.update(self.outputs.get("extra_app_client_ids") or {})
        return ids

    async def app_client(self) -> dict[str, Any]:
        primary = self._tpl.primary_client
        return {"app_client_id": await self._ensure_client(primary), "primary_app_client": primary}

    async def app_clients(self) -> dict[str, Any]:
        names = [name for name in self._tpl.clients if name != self._tpl.primary_client]
        ids = await asyncio.gather(*(self._ensure_client(name) for name in names))
        return {"extra_app_client_ids": dict(zip(names, ids, strict=True))}

    async def client_secret(self) -> dict[str, Any]:
        # The secret lives only in this frame, between DescribeUserPoolClient and CreateSecret (or
        # PutSecretValue); the registry gets the ARN. Storing it again after a lost response is
        # harmless: put_client_secret adopts our own secret and writes the same value.
        # One secret per client that has one, named per client (domain/naming.py).
        store = self._secrets
        ids = self._client_ids()
        primary = self._tpl.primary_client

        async def keep(client: str) -> str:
            client_id = ids[client]
            secret = await self.gw.user_pools.client_secret(
                self.cell, pool_id=self.outputs["user_pool_id"], client_id=client_id
            )
            stored = await store.put_client_secret(
                self.cell,
                name=self.names.named_client_secret(client, primary=client == primary),
                secret_value=secret,
                tags=self.tags,
                description=f"Secret of app client {client_id} of tenant {self.spec.tenant_id}",
            )
            return stored.arn or stored.id

        names = [name for name, client in self._tpl.clients.items() if client.generate_secret]
        arns = dict(zip(names, await asyncio.gather(*(keep(name) for name in names)), strict=True))
        outputs: dict[str, Any] = {"app_client_secret_arns": arns}
        if primary in arns:
            outputs["app_client_secret_arn"] = arns[primary]
        return outputs

    async def groups(self) -> dict[str, Any]:
        for group in self._tpl.groups:
            try:
                await self.gw.user_pools.create_group(self.cell, pool_id=self.outputs["user_pool_id"], group=group)
            except CloudAlreadyExists:
                pass  # adopted: groups live inside the tenant's own pool
        return {"groups": [group.name for group in self._tpl.groups]}

    async def hosted_ui_domain(self) -> dict[str, Any]:
        pool_id = self.outputs["user_pool_id"]
        domain = self.names.hosted_ui_domain
        owner = await self.gw.user_pools.domain_owner(self.cell, domain=domain)
        if owner is None:
            await self.gw.user_pools.create_domain(self.cell, pool_id=pool_id, domain=domain)
        elif owner != pool_id:
            raise CloudError(
                "DomainTaken",
                f"the hosted-UI prefix domain {domain!r} is held by another user pool; prefix domains are "
                "unique per Region across all AWS accounts. Change the resource prefix or remove that domain.",
            )
        return {
            "hosted_ui_domain_prefix": domain,
            "hosted_ui_domain": f"{domain}.auth.{self.cell.region}.amazoncognito.com",
        }

    async def admin_user(self) -> dict[str, Any]:
        assert self.spec.admin_email is not None and self._tpl.admin_group is not None
        pool_id = self.outputs["user_pool_id"]
        username = admin_username(self._tpl, self.spec.admin_email)
        if self._may_skip_lookup() or not await self.gw.user_pools.user_exists(self.cell, pool_id=pool_id, username=username):
            try:
                await self.gw.user_pools.create_user(
                    self.cell,
                    pool_id=pool_id,
                    username=username,
                    email=self.spec.admin_email,
                    attributes=(
                        {f"custom:{TENANT_ID_ATTRIBUTE}": self.spec.tenant_id}
                        if self.outputs.get("tenant_id_attribute", True)
                        else {}
                    ),
                )
            except CloudAlreadyExists:
                pass  # created by an earlier attempt whose response was lost
        await self.gw.user_pools.add_user_to_group(
            self.cell, pool_id=pool_id, username=username, group=self._tpl.admin_group
        )
        return {"admin_username": username}

    async def identity_pool(self) -> dict[str, Any]:
        pool = None if self._may_skip_lookup() else await self._find_identity_pool()
        if pool is not None:
            self._check_owned(pool, "identity pool")
        else:
            pool = await self.gw.identity_pools.create_identity_pool(
                self.cell,
                name=self.names.identity_pool,
                provider_name=self._provider_name,
                client_id=self.outputs["app_client_id"],
                allow_unauthenticated=self._tpl.allow_guest_identities,
                tags=self.tags,
                client_ids=self._trusted_client_ids(),
                login_providers=self._tpl.identity_pool.login_providers,
                server_side_token_check=self._tpl.identity_pool.server_side_token_check,
            )
        return {"identity_pool_id": pool.id}

    @property
    def _provider_name(self) -> str:
        return f"cognito-idp.{self.cell.region}.amazonaws.com/{self.outputs['user_pool_id']}"

    def _trusted_client_ids(self) -> list[str]:
        ids = self._client_ids()
        return [ids[name] for name, client in self._tpl.clients.items() if client.trusted_by_identity_pool and name in ids]

    async def _role(self, kind: str) -> dict[str, Any]:
        name = self.names.role(kind)
        trust = trust_policy(self.outputs["identity_pool_id"], authenticated=kind == "auth")
        role = await self._ensure_role(name, trust, f"{ROLE_KINDS[kind]} identities of tenant {self.spec.tenant_id}")
        key = ROLE_KINDS[kind]
        return {f"{key}_role_arn": role.arn, f"{key}_role_name": name}

    async def _ensure_role(self, name: str, trust: dict[str, Any], description: str) -> CloudResource:
        # Skipping the look-up is safe for roles in any case: names are unique per account, so a
        # role already there answers EntityAlreadyExists and is adopted below, ownership checked.
        role = None if self._may_skip_lookup() else await self.gw.iam.get_role(self.cell, name=name)
        if role is None:
            try:
                role = await self.gw.iam.create_role(
                    self.cell,
                    name=name,
                    path=self.settings.role_path,
                    trust_policy=trust,
                    tags=self.tags,
                    description=description,
                    permissions_boundary=self.settings.permissions_boundary,
                )
            except CloudAlreadyExists:
                role = await self.gw.iam.get_role(self.cell, name=name)
                if role is None:
                    raise
                await self._adopt_role(role, trust)
        else:
            await self._adopt_role(role, trust)
        return role

    async def _adopt_role(self, role: CloudResource, trust: dict[str, Any]) -> None:
        """Re-bind an adopted role (it may come from an earlier attempt, or an earlier setting) to
        this identity pool and to the configured permissions boundary. A boundary is never
        removed: with none configured, a role keeps the one it has."""
        self._check_owned(role, "IAM role")
        await self.gw.iam.update_trust_policy(self.cell, name=role.name, trust_policy=trust)
        boundary = self.settings.permissions_boundary
        if boundary is not None and role.extra.get("permissions_boundary") != boundary:
            await self.gw.iam.set_permissions_boundary(self.cell, name=role.name, boundary_arn=boundary)

    async def auth_role(self) -> dict[str, Any]:
        return await self._role("auth")

    async def unauth_role(self) -> dict[str, Any]:
        return await self._role("unauth")

    async def _role_policy(self, kind: str) -> dict[str, Any]:
        statements = self._tpl.authenticated_policy if kind == "auth" else self._tpl.unauthenticated_policy
        document = render_role_policy(statements, self._placeholder_values())
        await self.gw.iam.put_role_policy(
            self.cell, role_name=self.names.role(kind), policy_name=self.names.role_policy(kind), document=document
        )
        return {}

    async def auth_role_policy(self) -> dict[str, Any]:
        return await self._role_policy("auth")

    async def unauth_role_policy(self) -> dict[str, Any]:
        return await self._role_policy("unauth")

    async def extra_roles(self) -> dict[str, Any]:
        """The tier's [roles]: tenant-scoped like the authenticated role (same trust, their own
        tenant-scoped policy), for role-mapping rules and groups."""
        trust = trust_policy(self.outputs["identity_pool_id"], authenticated=True)
        values = self._placeholder_values()

        async def ensure(role: str) -> str:
            spec = self._tpl.roles[role]
            name = self.names.extra_role(role)
            found = await self._ensure_role(
                name, trust, spec.description or f"{role} identities of tenant {self.spec.tenant_id}"
            )
            await self.gw.iam.put_role_policy(
                self.cell,
                role_name=name,
                policy_name=self.names.extra_role_policy(role),
                document=render_role_policy(spec.policy, values),
            )
            assert found.arn is not None
            return found.arn

        names = list(self._tpl.roles)
        arns = await asyncio.gather(*(ensure(role) for role in names))
        return {"extra_role_arns": dict(zip(names, arns, strict=True))}

    async def group_roles(self) -> dict[str, Any]:
        arns = self.outputs["extra_role_arns"]
        for group in self._tpl.groups:
            if group.role is not None:
                await self.gw.user_pools.set_group_role(
                    self.cell, pool_id=self.outputs["user_pool_id"], group=group.name, role_arn=arns[group.role]
                )
        return {}

    def _role_mappings(self) -> dict[str, Any] | None:
        mapping = self._tpl.identity_pool.role_mapping
        if mapping is None:
            return None
        body: dict[str, Any] = {"Type": mapping.type, "AmbiguousRoleResolution": mapping.ambiguous_role_resolution}
        if mapping.type == "Rules":
            arns = {"authenticated": self.outputs["authenticated_role_arn"], **(self.outputs.get("extra_role_arns") or {})}
            body["RulesConfiguration"] = {
                "Rules": [
                    {"Claim": rule.claim, "MatchType": rule.match_type, "Value": rule.value, "RoleARN": arns[rule.role]}
                    for rule in mapping.rules
                ]
            }
        # One mapping per trusted app client: the key is "<provider name>:<client id>".
        return {f"{self._provider_name}:{client_id}": body for client_id in self._trusted_client_ids()}

    async def identity_pool_roles(self) -> dict[str, Any]:
        roles = {"authenticated": self.outputs["authenticated_role_arn"]}
        if self._tpl.allow_guest_identities:
            roles["unauthenticated"] = self.outputs["unauthenticated_role_arn"]
        await self.gw.identity_pools.set_roles(
            self.cell,
            identity_pool_id=self.outputs["identity_pool_id"],
            roles=roles,
            role_mappings=self._role_mappings(),
        )
        return {}

    # -- teardown steps ------------------------------------------------------------------------

    def _skip_if_never_had(self, step: str, made_by: str, *recorded: str) -> None:
        """Called by a teardown step that found nothing of the tenant's to delete: the step is
        recorded ``skipped`` when the tenant's tier never makes that resource (the provisioning
        step ``made_by`` is not in its plan) and no run completed that step or recorded one of
        its outputs (``recorded``). Never when the tier is no longer defined. The look-ups have
        run all the same: a resource of the tenant's name and tags (a run under an older
        template, cut short) is deleted, and the step is then done, not skipped."""
        if self.template is None or made_by in self.tenant.completed_steps:
            return
        if any(self.outputs.get(key) for key in recorded):
            return
        with_admin = bool(self.spec.admin_email) and self.template.admin_group is not None
        if made_by not in {s.name for s in provisioning_steps(self.template, with_admin=with_admin)}:
            self.skipped.add(step)

    async def _delete_role(self, kind: str) -> dict[str, Any]:
        deleted = await self._delete_role_named(self.names.role(kind))
        key = ROLE_KINDS[kind]
        if not deleted:
            self._skip_if_never_had(f"delete_{kind}_role", f"{kind}_role", f"{key}_role_arn", f"{key}_role_name")
        return {f"{key}_role_arn": None, f"{key}_role_name": None}

    async def delete_extra_roles(self) -> dict[str, Any]:
        # By the template's names too: a role created just before a crash was never recorded.
        roles = set(self.outputs.get("extra_role_arns") or {}) | set(self.template.roles if self.template else {})
        deleted = await asyncio.gather(*(self._delete_role_named(self.names.extra_role(role)) for role in sorted(roles)))
        if not any(deleted):
            self._skip_if_never_had("delete_extra_roles", "extra_roles", "extra_role_arns")
        return {"extra_role_arns": None}

    async def _delete_role_named(self, name: str) -> bool:
        """Whether a role of the tenant's was there to delete."""
        role = await self.gw.iam.get_role(self.cell, name=name)
        if not self._owned(role):
            return False
        try:
            # Inline policies go first: IAM refuses to delete a role that still has any.
            for policy in await self.gw.iam.list_role_policies(self.cell, role_name=name):
                try:
                    await self.gw.iam.delete_role_policy(self.cell, role_name=name, policy_name=policy)
                except CloudNotFound:
                    pass
            await self.gw.iam.delete_role(self.cell, name=name)
        except CloudNotFound:
            pass  # gone meanwhile: counts as deleted
        return True

    async def delete_auth_role(self) -> dict[str, Any]:
        return await self._delete_role("auth")

    async def delete_unauth_role(self) -> dict[str, Any]:
        return await self._delete_role("unauth")

    async def delete_identity_pool(self) -> dict[str, Any]:
        pool = await self._find_identity_pool()
        if self._owned(pool):
            assert pool is not None
            try:
                await self.gw.identity_pools.delete_identity_pool(self.cell, identity_pool_id=pool.id)
            except CloudNotFound:
                pass
        return {"identity_pool_id": None}

    async def delete_hosted_ui_domain(self) -> dict[str, Any]:
        pool = await self._find_user_pool()
        domain = pool.extra.get("domain") if pool is not None and self._owned(pool) else None
        if pool is not None and domain:
            try:
                await self.gw.user_pools.delete_domain(self.cell, pool_id=pool.id, domain=domain)
            except CloudNotFound:
                pass
        else:
            self._skip_if_never_had("delete_hosted_ui_domain", "hosted_ui_domain", "hosted_ui_domain", "hosted_ui_domain_prefix")
        return {"hosted_ui_domain": None, "hosted_ui_domain_prefix": None}

    async def delete_client_secret(self) -> dict[str, Any]:
        """Every app client secret: the recorded ones, and by name those of the template's
        clients (a secret created just before a crash was never recorded)."""
        done = {"app_client_secret_arn": None, "app_client_secret_arns": None}
        recorded = dict(self.outputs.get("app_client_secret_arns") or {})
        if self.outputs.get("app_client_secret_arn"):
            recorded.setdefault(self.outputs.get("primary_app_client") or "default", self.outputs["app_client_secret_arn"])
        secret_keys = ("app_client_secret_arn", "app_client_secret_arns")
        if self.gw.secrets is None and not recorded:
            self._skip_if_never_had("delete_client_secret", "client_secret", *secret_keys)
            return done  # no store and nothing stored: nothing to do
        store = self._secrets
        primary = self.outputs.get("primary_app_client") or (self.template.primary_client if self.template else "default")
        clients = set(recorded) | {name for name, c in (self.template.clients if self.template else {}).items() if c.generate_secret}
        # Secret name -> recorded ARN; the single-client name too, whatever the template says now.
        lookups = {self.names.client_secret: None} | {
            self.names.named_client_secret(name, primary=name == primary): recorded.get(name) for name in sorted(clients)
        }

        async def delete(arn: str | None, name: str) -> bool:
            found = await store.find_secret(self.cell, name=arn) if arn else None
            found = found or await store.find_secret(self.cell, name=name)
            if not self._owned(found):
                return False
            assert found is not None
            try:
                await store.delete_secret(self.cell, arn_or_name=found.arn or found.id)
            except CloudNotFound:
                pass
            return True

        if not any(await asyncio.gather(*(delete(arn, name) for name, arn in lookups.items()))):
            self._skip_if_never_had("delete_client_secret", "client_secret", *secret_keys)
        return done

    async def delete_user_pool(self) -> dict[str, Any]:
        pool = await self._find_user_pool()
        if self._owned(pool):
            assert pool is not None
            try:
                if pool.extra.get("deletion_protection", "ACTIVE") == "ACTIVE":
                    # DeleteUserPool fails while protection is on; we lift it only at this point.
                    await self.gw.user_pools.set_deletion_protection(self.cell, pool_id=pool.id, active=False)
                await self.gw.user_pools.delete_user_pool(self.cell, pool_id=pool.id)
            except CloudNotFound:
                pass
        return {
            "user_pool_id": None,
            "tenant_id_attribute": None,
            "user_pool_arn": None,
            "issuer_url": None,
            "app_client_id": None,
            "primary_app_client": None,
            "extra_app_client_ids": None,
            "resource_servers": None,
            "groups": None,
            "admin_username": None,
        }

    # -- the tenant's own identity providers and settings (PATCH too) -------------------------

    async def _provider_secret(self, name: str) -> SecretText | None:
        """Read back from Secrets Manager, where the API put it before the tenant was committed:
        the registry never holds it. Lives only in this frame, on its way to Cognito."""
        provider = self.spec.settings.provider(name)
        assert provider is not None
        if not provider.has_secret:
            return None
        return await self._secrets.read_secret(
            self.cell, arn_or_name=provider.client_secret_arn or self.names.identity_provider_secret(name)
        )

    async def _put_providers(self) -> None:
        """Adopt-or-create every provider of the settings: Describe first; Update one that is
        there (it may come from a lost response, or an earlier PATCH), Create one that is not."""
        pool_id = self.outputs["user_pool_id"]
        for provider in self.spec.settings.identity_providers:
            found = await self.gw.user_pools.describe_identity_provider(self.cell, pool_id=pool_id, name=provider.name)
            if found is not None and found["type"] != provider.type:
                raise CloudError(
                    "ProviderTypeMismatch",
                    f"the user pool already has a provider named {provider.name!r} of type {found['type']}, not {provider.type}",
                )
            await self.gw.user_pools.put_identity_provider(
                self.cell,
                pool_id=pool_id,
                provider=provider,
                client_secret=await self._provider_secret(provider.name),
                exists=found is not None,
            )

    async def identity_providers(self) -> dict[str, Any]:
        await self._put_providers()
        return {"identity_providers": self.spec.settings.provider_names}

    async def delete_identity_provider_secrets(self) -> dict[str, Any]:
        """The secrets of the settings' providers and of those a PATCH removed (by recorded ARN,
        else by name), then every other secret under the tenant's own ``.../idp/`` names that
        carries its ownership tags: a PATCH whose prune failed, or a request that crashed after
        storing a secret, leaves one that no setting names. The named look-ups stay because
        ListSecrets may lag minutes behind a CreateSecret in AWS; DescribeSecret does not."""
        in_settings = {p.name: p.client_secret_arn for p in self.spec.settings.identity_providers if p.has_secret}
        if self.gw.secrets is None:
            if not in_settings:
                self.skipped.add("delete_identity_provider_secrets")
            return {}
        named = in_settings | {n: None for n in self.outputs.get("removed_identity_providers") or [] if n not in in_settings}
        deleted = [await self._delete_provider_secret(name, arn) for name, arn in named.items()]
        handled = {self.names.identity_provider_secret(name) for name in named}
        prefix = self.names.identity_provider_secrets_prefix
        for found in await self._secrets.list_secrets_with_prefix(self.cell, prefix=prefix):
            # Again by name: only this tenant's prefix, and never a secret without its tags.
            if found.name.startswith(prefix) and found.name not in handled and self._owned(found):
                deleted.append(await self._delete_found_secret(found))
        if not any(deleted) and not in_settings:
            # Nothing found, and the settings hold no provider with a client secret.
            self.skipped.add("delete_identity_provider_secrets")
        return {}

    async def _delete_provider_secret(self, name: str, recorded: str | None) -> bool:
        """True when a secret of the tenant's was there (and is now gone)."""
        # Looked up by name too: a secret stored just before a crash may never have been recorded.
        store = self._secrets
        found = await store.find_secret(self.cell, name=recorded) if recorded else None
        found = found or await store.find_secret(self.cell, name=self.names.identity_provider_secret(name))
        if not self._owned(found):
            return False
        assert found is not None
        return await self._delete_found_secret(found)

    async def _delete_found_secret(self, found: CloudResource) -> bool:
        try:
            await self._secrets.delete_secret(self.cell, arn_or_name=found.arn or found.id)
        except CloudNotFound:
            pass
        return True

    # Steps of UpdateTenantSettings: converge a live tenant on its (patched) settings. Each is
    # declarative, so a run interrupted anywhere is simply run again from the start.

    async def update_identity_providers(self) -> dict[str, Any]:
        await self._put_providers()
        return {"identity_providers": self.spec.settings.provider_names}

    async def update_app_clients(self) -> dict[str, Any]:
        pool_id = self.outputs["user_pool_id"]
        for client, client_id in self._client_ids().items():
            await self.gw.user_pools.update_app_client(
                self.cell,
                pool_id=pool_id,
                client_id=client_id,
                name=self._client_name(client),
                template=self._tpl,
                client=client,
                **self._client_urls(),
            )
        return {}

    async def prune_identity_providers(self) -> dict[str, Any]:
        """Providers no longer in the settings go once no client lists them any more; so do
        their client secrets."""
        pool_id = self.outputs["user_pool_id"]
        wanted = set(self.spec.settings.provider_names)
        present = set(await self.gw.user_pools.list_identity_providers(self.cell, pool_id=pool_id))
        # The PATCH recorded which providers it removed: their secrets go even when a crash came
        # after the provider itself was deleted.
        removed = set(self.outputs.get("removed_identity_providers") or [])
        for name in sorted((present | removed) - wanted):
            if name in present:
                try:
                    await self.gw.user_pools.delete_identity_provider(self.cell, pool_id=pool_id, name=name)
                except CloudNotFound:
                    pass
            if self.gw.secrets is not None:
                await self._delete_provider_secret(name, None)
        return {"removed_identity_providers": None}

    def _created_with_tags(self, step: str) -> list[tuple[str, str]]:
        """What provisioning step ``step`` creates with the tenant's tags, as (kind, the ARN, id
        or name to find it by): the names the step creates it under, and what it recorded. A step
        that creates a tagged resource needs its case here, or update_tags misses it;
        tests/unit/test_tag_updates.py fails for any resource created with tags and not re-tagged."""
        outputs, names = self.outputs, self.names
        match step:
            case "user_pool":
                return [("user_pool", outputs["user_pool_arn"])] if outputs.get("user_pool_arn") else []
            case "identity_pool":
                return [("identity_pool", outputs["identity_pool_id"])] if outputs.get("identity_pool_id") else []
            case "auth_role" | "unauth_role":
                return [("role", names.role(step.removesuffix("_role")))]
            case "extra_roles":
                # By the template's names too, as teardown: a role created just before a crash was never recorded.
                roles = set(outputs.get("extra_role_arns") or {}) | set(self._tpl.roles)
                return [("role", names.extra_role(role)) for role in sorted(roles)]
            case "client_secret":
                primary = outputs.get("primary_app_client") or self._tpl.primary_client
                recorded = dict(outputs.get("app_client_secret_arns") or {})
                if outputs.get("app_client_secret_arn"):
                    recorded.setdefault(primary, outputs["app_client_secret_arn"])
                clients = set(recorded) | {name for name, c in self._tpl.clients.items() if c.generate_secret}
                return [
                    ("secret", recorded.get(name) or names.named_client_secret(name, primary=name == primary))
                    for name in sorted(clients)
                ]
            case "identity_providers":
                # Stored by the API (OnboardTenant, UpdateTenant) with the tags, for this step to read.
                return [
                    ("secret", p.client_secret_arn or names.identity_provider_secret(p.name))
                    for p in self.spec.settings.identity_providers
                    if p.has_secret
                ]
        return []

    async def _retag(self, kind: str, key: str) -> None:
        tags = self.tags
        if kind == "user_pool":
            await self.gw.user_pools.set_user_pool_tags(self.cell, pool_arn=key, tags=tags)
        elif kind == "identity_pool":
            await self.gw.identity_pools.set_identity_pool_tags(self.cell, identity_pool_id=key, tags=tags)
        elif kind == "role":
            role = await self.gw.iam.get_role(self.cell, name=key)
            if self._owned(role):
                await self.gw.iam.set_role_tags(self.cell, name=key, tags=tags)
        elif kind == "secret":
            found = await self._secrets.find_secret(self.cell, name=key)
            if self._owned(found):
                assert found is not None
                await self._secrets.set_secret_tags(self.cell, arn_or_name=found.id, tags=tags)
        else:  # pragma: no cover - a kind _created_with_tags names must be handled here
            raise AssertionError(f"no way to tag a {kind}")

    async def update_tags(self) -> dict[str, Any]:
        """Every resource of the tenant carries exactly the template's, the tenant's and the
        ownership tags; a tag the tenant removed is removed everywhere. The resources are those
        the steps of the tenant's plan create with tags (the plan its template and settings make
        now, and every step its provisioning recorded), found as those steps name them."""
        plan = with_identity_providers(provisioning_steps(self._tpl, with_admin=False), self.spec.settings)
        steps = dict.fromkeys([*(step.name for step in plan), *self.tenant.completed_steps])
        targets = dict.fromkeys(target for step in steps for target in self._created_with_tags(step))
        await asyncio.gather(*(self._retag(kind, key) for kind, key in targets))
        return {}

    async def update_user_pool(self) -> dict[str, Any]:
        """The display name is in the pool's message templates: UpdateUserPool renders them again.
        Skipped when the pool's messages already carry this name (UpdateUserPool shares the 15/s
        UserPoolUpdate quota with CreateUserPool)."""
        if self.outputs.get("messages_display_name") == self.spec.display_name:
            return {}
        await self.gw.user_pools.update_user_pool(
            self.cell,
            pool_id=self.outputs["user_pool_id"],
            template=self._tpl,
            tags=self.tags,
            display_name=self.spec.display_name,
            tenant_id=self.spec.tenant_id,
        )
        return {"messages_display_name": self.spec.display_name}


def _error_of(exc: BaseException, step: str | None) -> LastError:
    if isinstance(exc, CloudError):
        return LastError(code=exc.code, message=explain(exc), step=step)
    if isinstance(exc, DomainError):
        return LastError(code=exc.code, message=exc.message, step=step)
    return LastError(code="InternalError", message="an unexpected error occurred; see the service logs", step=step)


# The lifecycle event of each final status _finish writes (a failed teardown stays deprovisioning).
_LIFECYCLE = {
    TenantStatus.ACTIVE: PROVISIONING_SUCCEEDED,
    TenantStatus.FAILED: PROVISIONING_FAILED,
    TenantStatus.DELETED: DEPROVISIONED,
    TenantStatus.DEPROVISIONING: DEPROVISIONING_FAILED,
}


class _PlanRunner:
    """Shared by provisioning and teardown: run steps, record each one's outputs as it finishes."""

    operation = ""
    working_status = TenantStatus.PROVISIONING

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        gateways: Gateways,
        tiers: Mapping[str, TierTemplate],
        clock: Clock,
        settings: ProvisioningSettings,
        observer: StepObserver,
    ) -> None:
        self._uow = uow
        self._gateways = gateways
        self._tiers = tiers
        self._clock = clock
        self._settings = settings
        self._observer = observer

    async def _load(self, tenant_id: str) -> Tenant | None:
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        if tenant is None or tenant.status != self.working_status:
            return None
        return tenant

    async def _audit(
        self, uow: UnitOfWork, tenant_id: str, action: str, outcome: str, fence: Job | None, **detail: Any
    ) -> None:
        """An audit event in the caller's transaction: it commits with the write it describes."""
        actor = worker_actor(fence.lease_owner if fence is not None else None)
        detail = {"operation": self.operation, **detail}
        await uow.events.add(AuditEvent(tenant_id, self._clock.now(), actor, action, outcome, detail))

    async def _record(
        self,
        tenant_id: str,
        step: str,
        outputs: dict[str, Any],
        *,
        completed: bool,
        fence: Job | None,
        duration_s: float | None = None,
        skipped: bool = False,
    ) -> None:
        async with self._uow() as uow:
            if fence is not None and not await uow.jobs.holds(fence):
                raise LeaseLost(tenant_id)
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None or tenant.status != self.working_status:
                raise Superseded(tenant_id)
            for key, value in outputs.items():
                if value is None:
                    tenant.outputs.pop(key, None)
                else:
                    tenant.outputs[key] = value
            if completed and step not in tenant.completed_steps:
                tenant.completed_steps.append(step)
            tenant.updated_at = self._clock.now()
            await uow.tenants.save(tenant)
            duration = {} if duration_s is None else {"duration_ms": round(duration_s * 1000, 1)}
            # "skipped": a teardown step with nothing to delete of a resource the tier never makes.
            await self._audit(uow, tenant_id, f"step.{step}", "skipped" if skipped else "ok", fence, **duration)
            await uow.commit()

    async def _finish(
        self, tenant_id: str, to: TenantStatus, error: LastError | None, fence: Job | None
    ) -> TenantStatus | None:
        async with self._uow() as uow:
            if fence is not None and not await uow.jobs.holds(fence):
                return None  # the new holder of the job decides
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None or tenant.status != self.working_status:
                return tenant.status if tenant else TenantStatus.DELETED
            if to != tenant.status:
                tenant.transition(to, self._clock.now())
            tenant.last_error = error
            tenant.updated_at = self._clock.now()
            if to == TenantStatus.DELETED:
                tenant.completed_steps = []
            await uow.tenants.save(tenant)
            action = "tenant.teardown_failed" if to == TenantStatus.DEPROVISIONING else f"tenant.{to.value}"
            failure = {} if error is None else {"code": error.code, "step": error.step}
            await self._audit(uow, tenant_id, action, "ok" if error is None else "error", fence, **failure)
            await uow.outbox.add(lifecycle_event(_LIFECYCLE[to], tenant, self._clock.now(), error))
            await uow.commit()
            return tenant.status

    async def _attempt(self, handler: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Run a step, again after a retryable AWS error. Every try but a fresh tenant's first
        (module docstring) looks before it creates, so running it again after a lost response
        adopts what the lost call made."""
        s = self._settings
        for attempt in range(1, s.step_attempts + 1):
            _FIRST_TRY.set(attempt == 1)  # this step's own task: other steps are not affected
            try:
                return await handler()
            except CloudError as exc:
                if not exc.retryable or exc.attempts > 1 or attempt == s.step_attempts:
                    raise
                await asyncio.sleep(random.uniform(0, min(s.step_backoff_max_s, s.step_backoff_s * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _execute(
        self,
        tenant: Tenant,
        run: _TenantRun,
        steps: list[Step],
        done: list[str],
        record_completed: bool,
        fence: Job | None,
    ) -> LastError | None:
        # One registry write at a time (SQLite has a single writer anyway), in the order the steps
        # finished: asyncio.Lock is FIFO, so a step's record always commits before its dependents'.
        lock = asyncio.Lock()

        async def run_step(step: Step) -> None:
            handler: Callable[[], Awaitable[dict[str, Any]]] = getattr(run, step.name)
            started = time.perf_counter()
            outcome, code = "ok", None
            try:
                outputs = await self._attempt(handler)
                run.outputs.update(outputs)
                # The steps after this one start now, while its record is written: the write is
                # off the critical path. Safe: should the record fail (lease lost, tenant
                # deleted), what a dependent creates meanwhile is unrecorded like anything made
                # just before a crash, and the next run or the teardown finds it by name; the
                # dependent's own record fails the same way, and no further step starts.
                release_dependents()
                async with lock:
                    await self._record(
                        tenant.tenant_id,
                        step.name,
                        outputs,
                        completed=record_completed,
                        fence=fence,
                        duration_s=time.perf_counter() - started,
                        skipped=step.name in run.skipped,
                    )
            except Superseded:
                outcome = "superseded"
                raise
            except BaseException as exc:
                outcome, code = "error", (exc.code if isinstance(exc, DomainError) else type(exc).__name__)
                raise
            finally:
                self._observer.step_finished(
                    tenant_id=tenant.tenant_id,
                    operation=self.operation,
                    step=step.name,
                    duration_s=time.perf_counter() - started,
                    outcome=outcome,
                    error_code=code,
                )

        try:
            await run_plan(steps, run_step, done=done, max_concurrent=self._settings.plan_concurrency)
        except PlanError as failure:
            if isinstance(failure.error, Superseded):
                raise failure.error from None
            return _error_of(failure.error, failure.step)
        return None


def first_run(tenant: Tenant, fence: Job | None) -> bool:
    """The tenant's first provisioning run, whose steps may create without looking (module
    docstring): attempt 1 of the tenant's first job, nothing recorded yet."""
    return (
        fence is not None
        and fence.kind == JobKind.PROVISION
        and fence.attempts == 1
        and fence.first_for_tenant
        and tenant.status == TenantStatus.PROVISIONING
        and not tenant.completed_steps
        and not tenant.outputs
    )


class ProvisionTenant(_PlanRunner):
    """Run (or resume) the provisioning plan of a tenant in ``provisioning``.

    Steps already recorded as completed are skipped; the others adopt what exists and create
    what does not. The tenant ends ``active``, or ``failed`` with the AWS error code, the step and
    every resource recorded so far; a DELETE that arrives meanwhile wins.
    """

    operation = "provision"
    working_status = TenantStatus.PROVISIONING

    async def __call__(self, tenant_id: str, fence: Job | None = None) -> TenantStatus | None:
        """``fence`` is the job this run holds; every registry write checks it is still held."""
        tenant = await self._load(tenant_id)
        if tenant is None:
            return None
        template = self._tiers.get(tenant.spec.tier)
        if template is None:
            error: LastError | None = LastError(
                "UnknownTier", f"tier {tenant.spec.tier!r} is no longer defined in the templates"
            )
            return await self._finish(tenant_id, TenantStatus.FAILED, error, fence)
        run = _TenantRun(tenant, template, self._gateways, self._settings)
        run.fresh = first_run(tenant, fence)
        steps = provisioning_steps(
            template, with_admin=bool(tenant.spec.admin_email) and template.admin_group is not None
        )
        steps = with_identity_providers(steps, tenant.spec.settings)
        try:
            error = await self._execute(tenant, run, steps, tenant.completed_steps, True, fence)
        except Superseded:
            return None
        if error is not None:
            return await self._finish(tenant_id, TenantStatus.FAILED, error, fence)
        return await self._finish(tenant_id, TenantStatus.ACTIVE, None, fence)


class DeprovisionTenant(_PlanRunner):
    """Tear down every AWS resource of a tenant in ``deprovisioning``, then leave a tombstone.

    Every teardown step looks resources up again (by recorded id, else by name) so that one
    created but never recorded is deleted too; a resource already gone counts as deleted, and a
    resource without this tenant's ownership tags is never touched. On failure the tenant stays
    ``deprovisioning`` with ``last_error``; DELETE again resumes.
    """

    operation = "deprovision"
    working_status = TenantStatus.DEPROVISIONING

    async def __call__(self, tenant_id: str, fence: Job | None = None) -> TenantStatus | None:
        tenant = await self._load(tenant_id)
        if tenant is None:
            return None
        run = _TenantRun(tenant, self._tiers.get(tenant.spec.tier), self._gateways, self._settings)
        try:
            error = await self._execute(tenant, run, TEARDOWN_STEPS, [], False, fence)
        except Superseded:
            return None
        if error is not None:
            return await self._finish(tenant_id, TenantStatus.DEPROVISIONING, error, fence)
        return await self._finish(tenant_id, TenantStatus.DELETED, None, fence)


# A PATCH's changes, applied in place. Providers are put first so that the app clients may list
# them; providers that were removed go only after no client lists them any more.
UPDATE_STEPS = [
    Step("update_identity_providers"),
    Step("update_app_clients", ("update_identity_providers",)),
    Step("prune_identity_providers", ("update_app_clients",)),
    Step("update_tags", ("update_identity_providers",)),
    Step("update_user_pool", ("update_tags",)),
]


class UpdateTenantSettings(_PlanRunner):
    """Apply a live tenant's changed settings (PATCH /v1/tenants/{id}) to AWS in place.

    The tenant stays ``active`` throughout; ``settings_status`` is ``pending`` while this runs and
    ends ``applied``, or ``failed`` with ``last_error`` (the settings stay as patched: a new PATCH,
    even ``{}``, applies them again). Every step converges on the settings rather than replaying
    a diff, so a run cut short anywhere (crash, lost lease) is safe to run again from the start; a
    DELETE that arrives meanwhile wins.
    """

    operation = "update"
    working_status = TenantStatus.ACTIVE

    async def __call__(self, tenant_id: str, fence: Job | None = None) -> SettingsStatus | None:
        tenant = await self._load(tenant_id)
        if tenant is None or tenant.settings_status != SettingsStatus.PENDING:
            return None
        template = self._tiers.get(tenant.spec.tier)
        if template is None:
            error: LastError | None = LastError(
                "UnknownTier", f"tier {tenant.spec.tier!r} is no longer defined in the templates"
            )
            return await self._settle(tenant_id, error, fence)
        run = _TenantRun(tenant, template, self._gateways, self._settings)
        try:
            error = await self._execute(tenant, run, UPDATE_STEPS, [], False, fence)
        except Superseded:
            return None
        return await self._settle(tenant_id, error, fence)

    async def _settle(self, tenant_id: str, error: LastError | None, fence: Job | None) -> SettingsStatus | None:
        async with self._uow() as uow:
            if fence is not None and not await uow.jobs.holds(fence):
                return None  # the new holder of the job decides
            tenant = await uow.tenants.get(tenant_id, for_update=True)
            if tenant is None or tenant.status != TenantStatus.ACTIVE:
                return None
            tenant.settings_status = SettingsStatus.APPLIED if error is None else SettingsStatus.FAILED
            tenant.last_error = error
            tenant.updated_at = self._clock.now()
            await uow.tenants.save(tenant)
            failure = {} if error is None else {"code": error.code, "step": error.step}
            action = "tenant.settings_applied" if error is None else "tenant.settings_failed"
            await self._audit(uow, tenant_id, action, "ok" if error is None else "error", fence, **failure)
            await uow.commit()
            return tenant.settings_status
