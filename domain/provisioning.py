"""The provisioning plan of ARCHITECTURE.md and its teardown, as adopt-or-create steps.

Every step first looks for the resource it would create (by the id already recorded, else by its
deterministic name) and adopts it when it carries this tenant's ownership tags; only then does it
create. Its outputs are written to the registry the moment it finishes. A process killed between
an AWS create and that write therefore finds the resource again on the next run instead of
creating a second one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.audit import AuditEvent, worker_actor
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound, DomainError, ResourceNotOwned, explain
from domain.naming import ResourceNames, is_owned_by, ownership_tags
from domain.plan import PlanError, Step, run_plan
from domain.policies import render_role_policy, trust_policy
from domain.ports import (
    Clock,
    CloudResource,
    Job,
    IamGateway,
    IdentityPoolGateway,
    SecretStore,
    StepObserver,
    UnitOfWork,
    UnitOfWorkFactory,
    UserPoolGateway,
)
from domain.tenant import LastError, Tenant, TenantStatus
from domain.tiers import TierTemplate

ROLE_KINDS = {"auth": "authenticated", "unauth": "unauthenticated"}


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
    # A step failing with a retryable AWS error (throttling, 5xx, a lost response) is run again,
    # adopt-first, up to step_attempts times with capped exponential backoff and full jitter.
    step_attempts: int = 8
    step_backoff_s: float = 0.2
    step_backoff_max_s: float = 5.0


class Superseded(Exception):
    """The tenant left the state this run works for (e.g. a DELETE arrived): stop quietly."""


class LeaseLost(Superseded):
    """Another worker took the job over (our lease expired): stop without writing anything."""


def provisioning_steps(template: TierTemplate, *, with_admin: bool) -> list[Step]:
    steps = [Step("user_pool"), Step("app_client", ("user_pool",))]
    if template.app_client.generate_secret:
        steps.append(Step("client_secret", ("app_client",)))
    if template.mfa != "OFF":
        steps.append(Step("user_pool_mfa", ("user_pool",)))
    if template.groups:
        steps.append(Step("groups", ("user_pool",)))
    if template.hosted_ui_domain:
        steps.append(Step("hosted_ui_domain", ("user_pool",)))
    if with_admin:
        steps.append(Step("admin_user", ("groups",)))
    steps += [
        Step("identity_pool", ("app_client",)),
        Step("auth_role", ("identity_pool",)),
        Step("auth_role_policy", ("auth_role",)),
    ]
    role_policies = ["auth_role_policy"]
    if template.allow_guest_identities:
        steps += [Step("unauth_role", ("identity_pool",)), Step("unauth_role_policy", ("unauth_role",))]
        role_policies.append("unauth_role_policy")
    steps.append(Step("identity_pool_roles", tuple(role_policies)))
    return steps


# Teardown walks the plan in reverse. Deleting the user pool deletes its clients, groups and
# users; the identity pool and the roles are separate resources (AWS-FACTS.md "Ordering facts").
TEARDOWN_STEPS = [
    Step("delete_auth_role"),
    Step("delete_unauth_role"),
    Step("delete_identity_pool", ("delete_auth_role", "delete_unauth_role")),
    Step("delete_hosted_ui_domain"),
    Step("delete_user_pool", ("delete_identity_pool", "delete_hosted_ui_domain")),
    # The secret is a copy of the app client's: nothing depends on it, so it goes at any time.
    Step("delete_client_secret"),
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
        self.tags = ownership_tags(tenant.tenant_id)
        self.outputs: dict[str, Any] = dict(tenant.outputs)

    # -- helpers ---------------------------------------------------------------------------

    def _check_owned(self, resource: CloudResource, what: str) -> None:
        if not is_owned_by(resource.tags, self.spec.tenant_id):
            raise ResourceNotOwned(
                f"a {what} named {resource.name!r} already exists and does not carry this tenant's "
                "ownership tags; it was not created by this service for this tenant and will not be adopted"
            )

    def _owned(self, resource: CloudResource | None) -> bool:
        return resource is not None and is_owned_by(resource.tags, self.spec.tenant_id)

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
        pool = await self._find_user_pool()
        if pool is not None:
            self._check_owned(pool, "user pool")
        else:
            pool = await self.gw.user_pools.create_user_pool(
                self.cell, name=self.names.user_pool, template=self._tpl, tags=self.tags
            )
        return {
            "user_pool_id": pool.id,
            "user_pool_arn": pool.arn,
            "issuer_url": f"https://cognito-idp.{self.cell.region}.amazonaws.com/{pool.id}",
        }

    async def user_pool_mfa(self) -> dict[str, Any]:
        await self.gw.user_pools.configure_mfa(self.cell, pool_id=self.outputs["user_pool_id"], template=self._tpl)
        return {}

    async def app_client(self) -> dict[str, Any]:
        pool_id = self.outputs["user_pool_id"]
        client_id = await self.gw.user_pools.find_app_client(self.cell, pool_id=pool_id, name=self.names.app_client)
        if client_id is None:
            client_id = await self.gw.user_pools.create_app_client(
                self.cell, pool_id=pool_id, name=self.names.app_client, template=self._tpl
            )
        return {"app_client_id": client_id}

    async def client_secret(self) -> dict[str, Any]:
        # The secret lives only in this frame, between DescribeUserPoolClient and CreateSecret (or
        # PutSecretValue); the registry gets the ARN. Storing it again after a lost response is
        # harmless: put_client_secret adopts our own secret and writes the same value.
        store = self._secrets
        client_id = self.outputs["app_client_id"]
        secret = await self.gw.user_pools.client_secret(
            self.cell, pool_id=self.outputs["user_pool_id"], client_id=client_id
        )
        stored = await store.put_client_secret(
            self.cell,
            name=self.names.client_secret,
            secret_value=secret,
            tags=self.tags,
            description=f"Secret of app client {client_id} of tenant {self.spec.tenant_id}",
        )
        return {"app_client_secret_arn": stored.arn or stored.id}

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
        if not await self.gw.user_pools.user_exists(self.cell, pool_id=pool_id, username=username):
            try:
                await self.gw.user_pools.create_user(
                    self.cell, pool_id=pool_id, username=username, email=self.spec.admin_email
                )
            except CloudAlreadyExists:
                pass  # created by an earlier attempt whose response was lost
        await self.gw.user_pools.add_user_to_group(
            self.cell, pool_id=pool_id, username=username, group=self._tpl.admin_group
        )
        return {"admin_username": username}

    async def identity_pool(self) -> dict[str, Any]:
        pool = await self._find_identity_pool()
        if pool is not None:
            self._check_owned(pool, "identity pool")
        else:
            pool = await self.gw.identity_pools.create_identity_pool(
                self.cell,
                name=self.names.identity_pool,
                provider_name=f"cognito-idp.{self.cell.region}.amazonaws.com/{self.outputs['user_pool_id']}",
                client_id=self.outputs["app_client_id"],
                allow_unauthenticated=self._tpl.allow_guest_identities,
                tags=self.tags,
            )
        return {"identity_pool_id": pool.id}

    async def _role(self, kind: str) -> dict[str, Any]:
        name = self.names.role(kind)
        trust = trust_policy(self.outputs["identity_pool_id"], authenticated=kind == "auth")
        role = await self.gw.iam.get_role(self.cell, name=name)
        if role is None:
            try:
                role = await self.gw.iam.create_role(
                    self.cell,
                    name=name,
                    path=self.settings.role_path,
                    trust_policy=trust,
                    tags=self.tags,
                    description=f"{ROLE_KINDS[kind]} identities of tenant {self.spec.tenant_id}",
                    permissions_boundary=self.settings.permissions_boundary,
                )
            except CloudAlreadyExists:
                role = await self.gw.iam.get_role(self.cell, name=name)
                if role is None:
                    raise
                await self._adopt_role(role, trust)
        else:
            await self._adopt_role(role, trust)
        key = ROLE_KINDS[kind]
        return {f"{key}_role_arn": role.arn, f"{key}_role_name": name}

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

    async def identity_pool_roles(self) -> dict[str, Any]:
        roles = {"authenticated": self.outputs["authenticated_role_arn"]}
        if self._tpl.allow_guest_identities:
            roles["unauthenticated"] = self.outputs["unauthenticated_role_arn"]
        await self.gw.identity_pools.set_roles(
            self.cell, identity_pool_id=self.outputs["identity_pool_id"], roles=roles
        )
        return {}

    # -- teardown steps ------------------------------------------------------------------------

    async def _delete_role(self, kind: str) -> dict[str, Any]:
        name = self.names.role(kind)
        role = await self.gw.iam.get_role(self.cell, name=name)
        if self._owned(role):
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
        key = ROLE_KINDS[kind]
        return {f"{key}_role_arn": None, f"{key}_role_name": None}

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
        if self._owned(pool):
            assert pool is not None
            domain = pool.extra.get("domain")
            if domain:
                try:
                    await self.gw.user_pools.delete_domain(self.cell, pool_id=pool.id, domain=domain)
                except CloudNotFound:
                    pass
        return {"hosted_ui_domain": None, "hosted_ui_domain_prefix": None}

    async def delete_client_secret(self) -> dict[str, Any]:
        recorded = self.outputs.get("app_client_secret_arn")
        if self.gw.secrets is None and not recorded:
            return {"app_client_secret_arn": None}  # no store and nothing stored: nothing to do
        store = self._secrets
        # Looked up by name too: a secret created just before a crash was never recorded.
        found = await store.find_secret(self.cell, name=recorded) if recorded else None
        found = found or await store.find_secret(self.cell, name=self.names.client_secret)
        if self._owned(found):
            assert found is not None
            try:
                await store.delete_secret(self.cell, arn_or_name=found.arn or found.id)
            except CloudNotFound:
                pass
        return {"app_client_secret_arn": None}

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
            "user_pool_arn": None,
            "issuer_url": None,
            "app_client_id": None,
            "groups": None,
            "admin_username": None,
        }


def _error_of(exc: BaseException, step: str | None) -> LastError:
    if isinstance(exc, CloudError):
        return LastError(code=exc.code, message=explain(exc), step=step)
    if isinstance(exc, DomainError):
        return LastError(code=exc.code, message=exc.message, step=step)
    return LastError(code="InternalError", message="an unexpected error occurred; see the service logs", step=step)


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
            await self._audit(uow, tenant_id, f"step.{step}", "ok", fence, **duration)
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
            await uow.commit()
            return tenant.status

    async def _attempt(self, handler: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Run a step, again after a retryable AWS error. Every step looks before it creates, so
        running it again after a lost response adopts what the lost call made."""
        s = self._settings
        for attempt in range(1, s.step_attempts + 1):
            try:
                return await handler()
            except CloudError as exc:
                if not exc.retryable or attempt == s.step_attempts:
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
        lock = asyncio.Lock()  # one registry write at a time: SQLite has a single writer anyway

        async def run_step(step: Step) -> None:
            handler: Callable[[], Awaitable[dict[str, Any]]] = getattr(run, step.name)
            started = time.perf_counter()
            outcome, code = "ok", None
            try:
                outputs = await self._attempt(handler)
                async with lock:
                    await self._record(
                        tenant.tenant_id,
                        step.name,
                        outputs,
                        completed=record_completed,
                        fence=fence,
                        duration_s=time.perf_counter() - started,
                    )
                run.outputs.update(outputs)
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
            await run_plan(steps, run_step, done=done)
        except PlanError as failure:
            if isinstance(failure.error, Superseded):
                raise failure.error from None
            return _error_of(failure.error, failure.step)
        return None


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
            error = LastError("UnknownTier", f"tier {tenant.spec.tier!r} is no longer defined in the templates")
            return await self._finish(tenant_id, TenantStatus.FAILED, error, fence)
        run = _TenantRun(tenant, template, self._gateways, self._settings)
        steps = provisioning_steps(
            template, with_admin=bool(tenant.spec.admin_email) and template.admin_group is not None
        )
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
