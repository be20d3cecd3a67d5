"""What every resource entry works with: one tenant's run (spec, template, cell, gateways, the
outputs recorded so far) and the look-ups several entries share."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from domain.errors import DomainError, ResourceNotOwned
from domain.naming import ResourceNames, is_owned_by, ownership_tags
from domain.ports import CloudResource, IamGateway, IdentityPoolGateway, SecretStore, SecretText, UserPoolGateway
from domain.provisioning.outputs import TenantOutputs, outputs_of
from domain.tenant import Cell, Tenant, TenantSpec
from domain.tiers import TierTemplate, template_tags

# True while a step runs its first try (set by the runner, per step task).
FIRST_TRY: contextvars.ContextVar[bool] = contextvars.ContextVar("first_try", default=False)


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


@dataclass(frozen=True, slots=True)
class Scope:
    """What decides which entries a tenant's plan holds."""

    template: TierTemplate
    with_admin: bool = False
    # The tenant's own identity providers (a PATCH may add or remove them).
    has_identity_providers: bool = False


def missing_secret_store() -> DomainError:
    return DomainError(
        "this tier's app client has a secret, but no secret store (AWS Secrets Manager) is configured",
        code="secret_store_missing",
    )


@dataclass(slots=True)
class TenantRun:
    """One run of one tenant's plan: the entries of resources.py read and extend its outputs."""

    tenant: Tenant
    template: TierTemplate | None
    gw: Gateways
    settings: ProvisioningSettings
    names: ResourceNames = field(init=False)
    tags: dict[str, str] = field(init=False)
    outputs: TenantOutputs = field(init=False)
    # The first run of a fresh tenant (runner.py): its steps skip their look-ups.
    fresh: bool = False
    # Teardown steps that had nothing to delete of a resource the tier never makes: their audit
    # events say "skipped", not "ok".
    skipped: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = ResourceNames(self.settings.resource_prefix, self.tenant.tenant_id)
        # The template's tags, under the ownership tags (which nothing may override).
        self.tags = template_tags(self.template, ownership_tags(self.tenant.tenant_id), self.tenant.spec.settings.tags)
        self.outputs = outputs_of(self.tenant.outputs)

    @property
    def spec(self) -> TenantSpec:
        return self.tenant.spec

    @property
    def cell(self) -> Cell:
        return self.tenant.cell

    @property
    def tpl(self) -> TierTemplate:
        assert self.template is not None
        return self.template

    @property
    def secrets(self) -> SecretStore:
        if self.gw.secrets is None:
            raise missing_secret_store()
        return self.gw.secrets

    def scope(self) -> Scope:
        return Scope(
            self.tpl,
            with_admin=bool(self.spec.admin_email) and self.tpl.admin_group is not None,
            has_identity_providers=bool(self.spec.settings.identity_providers),
        )

    # -- ownership ---------------------------------------------------------------------------

    def check_owned(self, resource: CloudResource, what: str) -> None:
        if not is_owned_by(resource.tags, self.spec.tenant_id):
            raise ResourceNotOwned(
                f"a {what} named {resource.name!r} already exists and does not carry this tenant's "
                "ownership tags; it was not created by this service for this tenant and will not be adopted"
            )

    def owned(self, resource: CloudResource | None) -> bool:
        return resource is not None and is_owned_by(resource.tags, self.spec.tenant_id)

    def may_skip_lookup(self) -> bool:
        """Create without looking: the first try of a step in the first run of a fresh tenant."""
        return self.fresh and FIRST_TRY.get()

    # -- shared look-ups ---------------------------------------------------------------------

    async def find_user_pool(self) -> CloudResource | None:
        found = None
        if self.outputs.get("user_pool_id"):
            found = await self.gw.user_pools.find_user_pool(
                self.cell, pool_id=self.outputs.get("user_pool_id"), name=self.names.user_pool
            )
        return found or await self.gw.user_pools.find_user_pool(self.cell, pool_id=None, name=self.names.user_pool)

    async def find_identity_pool(self) -> CloudResource | None:
        found = None
        if self.outputs.get("identity_pool_id"):
            found = await self.gw.identity_pools.find_identity_pool(
                self.cell, pool_id=self.outputs.get("identity_pool_id"), name=self.names.identity_pool
            )
        return found or await self.gw.identity_pools.find_identity_pool(
            self.cell, pool_id=None, name=self.names.identity_pool
        )

    def out(self, key: str) -> Any:
        """A recorded output a step's dependencies guarantee (a KeyError is a plan bug)."""
        return self.outputs[key]  # type: ignore[literal-required]

    def placeholder_values(self) -> dict[str, str]:
        return {
            "tenant_id": self.spec.tenant_id,
            "partition": self.settings.partition,
            "region": self.cell.region,
            "account_id": self.cell.account_id,
            "user_pool_id": self.out("user_pool_id"),
            "user_pool_arn": self.out("user_pool_arn"),
            "identity_pool_id": self.out("identity_pool_id"),
        }

    @property
    def provider_name(self) -> str:
        return f"cognito-idp.{self.cell.region}.amazonaws.com/{self.out('user_pool_id')}"

    def client_ids(self) -> dict[str, str]:
        """Every app client recorded so far, by template name, the primary first. A step reads
        only the clients its dependencies made: the secrets of extra clients do not wait for a
        public primary one, which may not be recorded yet."""
        ids: dict[str, str] = {}
        primary_id = self.outputs.get("app_client_id")
        if primary_id:
            ids[self.outputs.get("primary_app_client") or self.tpl.primary_client] = primary_id
        ids.update(self.outputs.get("extra_app_client_ids") or {})
        return ids

    def trusted_client_ids(self) -> list[str]:
        ids = self.client_ids()
        return [ids[name] for name, client in self.tpl.clients.items() if client.trusted_by_identity_pool and name in ids]

    def client_secrets(self) -> dict[str, str | None]:
        """Secret name -> recorded ARN of every app client secret the tenant may have: the
        recorded ones, the template's clients with a secret (one created just before a crash was
        never recorded), and the single-client name whatever the template says now."""
        recorded = dict(self.outputs.get("app_client_secret_arns") or {})
        primary_arn = self.outputs.get("app_client_secret_arn")
        primary = self.outputs.get("primary_app_client") or (self.template.primary_client if self.template else "default")
        if primary_arn:
            recorded.setdefault(primary, primary_arn)
        template_clients = self.template.clients if self.template else {}
        clients = set(recorded) | {name for name, c in template_clients.items() if c.generate_secret}
        named: dict[str, str | None] = {
            self.names.named_client_secret(name, primary=name == primary): recorded.get(name) for name in sorted(clients)
        }
        return named

    async def provider_secret(self, name: str) -> SecretText | None:
        """Read back from Secrets Manager, where the API put it before the tenant was committed:
        the registry never holds it. Lives only in this frame, on its way to Cognito."""
        provider = self.spec.settings.provider(name)
        assert provider is not None
        if not provider.has_secret:
            return None
        return await self.secrets.read_secret(
            self.cell, arn_or_name=provider.client_secret_arn or self.names.identity_provider_secret(name)
        )
