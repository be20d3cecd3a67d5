"""Ports: the small Protocols the domain needs from the outside world, one role each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from domain.audit import AuditEvent
from domain.lifecycle import LifecycleEvent
from domain.tenant import Cell, JobKind, Tenant
from domain.tenant_settings import IdentityProviderSettings
from domain.tiers import Group, ResourceServer, TierTemplate


@dataclass(frozen=True, slots=True)
class CloudResource:
    """What a gateway reports about an AWS resource it found or created."""

    id: str
    name: str
    arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Resource-specific facts a step needs (e.g. a user pool's ``domain``).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SecretText:
    """A secret value on its way from one AWS call to another (an app client secret).

    Its repr and str hide the value, so an error message, a log line or a traceback that mentions
    it shows nothing; ``reveal()`` gives it to the one request that must carry it. It is not JSON
    serialisable, so it cannot slip into the registry's outputs either.
    """

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretText('[redacted]')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    tenant_id: str
    kind: JobKind
    attempts: int
    lease_owner: str
    lease_expires_at: datetime
    # True when the tenant has no earlier job of any kind: for a provision job, the one written in
    # the same transaction as the tenant itself (ProvisionTenant's fast path relies on it).
    first_for_tenant: bool = False


class Clock(Protocol):
    def now(self) -> datetime: ...


class TenantRepository(Protocol):
    async def add(self, tenant: Tenant) -> None:
        """Insert a new tenant; raises TenantConflict when the id already exists."""

    async def get(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None: ...

    async def save(self, tenant: Tenant) -> None:
        """Write back status, last_error, outputs, completed steps and updated_at."""

    async def list(
        self, *, status: str | None, tier: str | None, limit: int, after: str | None
    ) -> list[Tenant]:
        """Tenants ordered by tenant_id, those after ``after`` (keyset pagination)."""


class JobQueue(Protocol):
    async def enqueue(self, tenant_id: str, kind: JobKind, now: datetime) -> None: ...

    async def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> Job | None:
        """Lease the oldest runnable job: pending, or running with an expired lease, and never
        a second job of a tenant that already has one leased."""

    async def claim_batch(self, worker_id: str, now: datetime, lease_seconds: float, limit: int) -> list[Job]:
        """Up to ``limit`` jobs as ``claim`` would lease them one by one, in one transaction."""

    async def holds(self, job: Job) -> bool:
        """Fencing check inside a write transaction: is ``job`` still leased to its holder? The
        job stays locked until the transaction ends."""

    async def extend(self, job: Job, now: datetime, lease_seconds: float) -> bool:
        """Renew the lease; False when the lease was lost to another worker."""

    async def complete(self, job: Job, now: datetime) -> None: ...

    async def release(self, job: Job, now: datetime) -> None:
        """Give the job back (pending) without finishing it, e.g. on shutdown."""

    async def pending_count(self) -> int: ...


class AuditLog(Protocol):
    async def add(self, event: AuditEvent) -> None:
        """Append an event; its id is assigned by the registry."""

    async def list_for_tenant(self, tenant_id: str, *, limit: int, after_id: int | None) -> list[AuditEvent]:
        """A tenant's events in id order (oldest first), those after ``after_id``."""


class Outbox(Protocol):
    async def add(self, event: LifecycleEvent) -> None:
        """Stage a lifecycle event for delivery; it commits (or rolls back) with the transaction."""


class UnitOfWork(Protocol):
    """One registry transaction: ``async with uow: ...; await uow.commit()``."""

    tenants: TenantRepository
    jobs: JobQueue
    events: AuditLog
    outbox: Outbox

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit; ``read_only`` promises plain reads only (no write, lock or commit of
        changes), which the registry may serve more cheaply."""
        ...


class UserPoolGateway(Protocol):
    """cognito-idp. Errors come out as domain CloudError subclasses."""

    async def find_user_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        """By id when given (None if gone), else by exact name. ``extra['domain']`` is the
        pool's hosted-UI domain or None."""

    async def create_user_pool(
        self,
        cell: Cell,
        *,
        name: str,
        template: TierTemplate,
        tags: dict[str, str],
        display_name: str | None = None,
        tenant_id: str | None = None,
    ) -> CloudResource:
        """Everything the template says about the pool; ``{{display_name}}`` and
        ``{{tenant_id}}`` in its messages are filled in with the tenant's values."""

    async def configure_mfa(
        self,
        cell: Cell,
        *,
        pool_id: str,
        template: TierTemplate,
        display_name: str | None = None,
        tenant_id: str | None = None,
    ) -> None: ...

    async def find_app_client(self, cell: Cell, *, pool_id: str, name: str) -> str | None: ...

    async def create_app_client(
        self,
        cell: Cell,
        *,
        pool_id: str,
        name: str,
        template: TierTemplate,
        client: str | None = None,
        callback_urls: Sequence[str] | None = None,
        logout_urls: Sequence[str] | None = None,
        identity_providers: Sequence[str] | None = None,
    ) -> str:
        """The template's app client ``client`` (default: its primary one). Non-empty
        ``callback_urls``/``logout_urls`` replace the template's; ``identity_providers`` are
        allowed next to COGNITO."""

    async def ensure_resource_server(self, cell: Cell, *, pool_id: str, server: ResourceServer) -> None:
        """Create the resource server unless the pool already has one with its identifier."""

    async def set_group_role(self, cell: Cell, *, pool_id: str, group: str, role_arn: str) -> None:
        """The group's IAM role (UpdateGroup RoleArn): cognito:preferred_role in ID tokens."""

    async def client_secret(self, cell: Cell, *, pool_id: str, client_id: str) -> SecretText:
        """The app client's secret (DescribeUserPoolClient). Raises CloudError
        ``AppClientHasNoSecret`` when the client was created without one."""

    async def create_group(self, cell: Cell, *, pool_id: str, group: Group) -> None:
        """Raises CloudAlreadyExists when the group is already there."""

    async def domain_owner(self, cell: Cell, *, domain: str) -> str | None:
        """The user pool id holding ``domain`` in this Region, or None."""

    async def create_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None: ...

    async def delete_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None: ...

    async def user_exists(self, cell: Cell, *, pool_id: str, username: str) -> bool: ...

    async def create_user(
        self, cell: Cell, *, pool_id: str, username: str, email: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Raises CloudAlreadyExists when the username is taken. ``attributes`` are further
        user attributes, e.g. ``custom:tenant_id``."""

    async def add_user_to_group(self, cell: Cell, *, pool_id: str, username: str, group: str) -> None: ...

    async def set_deletion_protection(self, cell: Cell, *, pool_id: str, active: bool) -> None: ...

    async def delete_user_pool(self, cell: Cell, *, pool_id: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_owned_user_pools(self, cell: Cell) -> list[CloudResource]:
        """Every user pool in the cell's Region that carries the service's managed-by tag, with
        its tags (``tenants:tenant-id``) and ``extra`` as ``find_user_pool`` reports it."""

    # -- the tenant's own identity providers and settings (domain/tenant_settings.py) ---------

    async def describe_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> dict[str, Any] | None:
        """``{"type", "details", "attribute_mapping"}`` of the pool's provider ``name`` (details
        without ``client_secret``), or None when the pool has no such provider."""

    async def put_identity_provider(
        self,
        cell: Cell,
        *,
        pool_id: str,
        provider: IdentityProviderSettings,
        client_secret: SecretText | None,
        exists: bool,
    ) -> None:
        """CreateIdentityProvider, or UpdateIdentityProvider when ``exists``: the pool's provider
        then has exactly these details and attribute mapping."""

    async def delete_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_identity_providers(self, cell: Cell, *, pool_id: str) -> list[str]: ...

    async def update_app_client(
        self,
        cell: Cell,
        *,
        pool_id: str,
        client_id: str,
        name: str,
        template: TierTemplate,
        client: str | None = None,
        callback_urls: Sequence[str] | None = None,
        logout_urls: Sequence[str] | None = None,
        identity_providers: Sequence[str] | None = None,
    ) -> None:
        """UpdateUserPoolClient with the client's whole configuration, as create_app_client
        builds it (UpdateUserPoolClient resets what it is not given)."""

    async def update_user_pool(
        self, cell: Cell, *, pool_id: str, template: TierTemplate, tags: dict[str, str], display_name: str, tenant_id: str
    ) -> None:
        """UpdateUserPool with the pool's whole configuration (messages rendered with
        ``display_name``), then SetUserPoolMfaConfig, as at creation."""

    async def set_user_pool_tags(self, cell: Cell, *, pool_arn: str, tags: dict[str, str]) -> None:
        """Make the pool's tags exactly ``tags`` (TagResource, then UntagResource for the rest)."""


class IdentityPoolGateway(Protocol):
    """cognito-identity."""

    async def find_identity_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None: ...

    async def create_identity_pool(
        self,
        cell: Cell,
        *,
        name: str,
        provider_name: str,
        client_id: str,
        allow_unauthenticated: bool,
        tags: dict[str, str],
        client_ids: Sequence[str] = (),
        login_providers: Mapping[str, str] | None = None,
        server_side_token_check: bool = True,
    ) -> CloudResource:
        """Trusts ``provider_name`` with each of ``client_ids`` (or just ``client_id``), and the
        social ``login_providers`` (SupportedLoginProviders)."""

    async def set_roles(
        self, cell: Cell, *, identity_pool_id: str, roles: dict[str, str], role_mappings: dict[str, Any] | None = None
    ) -> None:
        """SetIdentityPoolRoles: the default roles and, per provider, a Token or Rules mapping."""

    async def delete_identity_pool(self, cell: Cell, *, identity_pool_id: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_owned_identity_pools(self, cell: Cell) -> list[CloudResource]:
        """Every identity pool in the cell's Region that carries the service's managed-by tag."""

    async def set_identity_pool_tags(self, cell: Cell, *, identity_pool_id: str, tags: dict[str, str]) -> None:
        """Make the pool's tags exactly ``tags``."""


class IamGateway(Protocol):
    async def get_role(self, cell: Cell, *, name: str) -> CloudResource | None:
        """``id`` is the role name; ``tags`` its tags; ``extra['permissions_boundary']`` the ARN
        of its permissions boundary or None."""

    async def create_role(
        self,
        cell: Cell,
        *,
        name: str,
        path: str,
        trust_policy: dict[str, Any],
        tags: dict[str, str],
        description: str,
        permissions_boundary: str | None = None,
    ) -> CloudResource:
        """Raises CloudAlreadyExists (EntityAlreadyExists) when the name is taken."""

    async def update_trust_policy(self, cell: Cell, *, name: str, trust_policy: dict[str, Any]) -> None: ...

    async def set_permissions_boundary(self, cell: Cell, *, name: str, boundary_arn: str) -> None:
        """Replace the role's permissions boundary (PutRolePermissionsBoundary)."""

    async def put_role_policy(self, cell: Cell, *, role_name: str, policy_name: str, document: dict[str, Any]) -> None: ...

    async def list_role_policies(self, cell: Cell, *, role_name: str) -> list[str]: ...

    async def delete_role_policy(self, cell: Cell, *, role_name: str, policy_name: str) -> None: ...

    async def delete_role(self, cell: Cell, *, name: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_owned_roles(self, cell: Cell, *, path_prefix: str) -> list[CloudResource]:
        """Every role of the cell's account under ``path_prefix`` that carries the service's
        managed-by tag; ``id`` is the role name."""

    async def set_role_tags(self, cell: Cell, *, name: str, tags: dict[str, str]) -> None:
        """Make the role's tags exactly ``tags`` (TagRole, UntagRole)."""


class SecretStore(Protocol):
    """AWS Secrets Manager: where a confidential app client's secret is kept for the tenant, and
    the client secrets of the tenant's own identity providers.

    Only ``read_secret`` returns a value, and only identity-provider secrets are read with it: an
    app client's secret goes in and never comes back out. A CloudResource describes a secret by
    name, ARN and tags only.
    """

    async def find_secret(self, cell: Cell, *, name: str) -> CloudResource | None:
        """By name or ARN (DescribeSecret); None when there is none. ``id`` and ``arn`` are the
        ARN, ``tags`` its tags, ``extra['deleted']`` whether it is scheduled for deletion."""

    async def put_client_secret(
        self, cell: Cell, *, name: str, secret_value: SecretText, tags: dict[str, str], description: str
    ) -> CloudResource:
        """Create the secret (CreateSecret). When the name is taken, adopt that secret if it
        carries ``tags`` and store ``secret_value`` as its current version (PutSecretValue);
        raise ResourceNotOwned if it does not."""

    async def delete_secret(self, cell: Cell, *, arn_or_name: str) -> None:
        """Delete it at once, with no recovery window. Raises CloudNotFound when it is already
        gone (AWS may also simply succeed for a secret that no longer exists)."""

    async def list_owned_secrets(self, cell: Cell) -> list[CloudResource]:
        """Every secret in the cell's Region that carries the service's managed-by tag, with its
        tags, as ``find_secret`` reports it (for the orphan sweep)."""

    async def list_secrets_with_prefix(self, cell: Cell, *, prefix: str) -> list[CloudResource]:
        """Every secret in the cell's Region whose name starts with ``prefix`` (case-sensitive,
        as ListSecrets' ``name`` filter), with its tags, as ``find_secret`` reports it."""

    async def read_secret(self, cell: Cell, *, arn_or_name: str) -> SecretText:
        """The current value (GetSecretValue) of a secret the service stored: an identity
        provider's client secret only (never an app client's), on its way to Create- or
        UpdateIdentityProvider, or to compare with the one a repeated POST sends. Raises
        CloudNotFound."""

    async def set_secret_tags(self, cell: Cell, *, arn_or_name: str, tags: dict[str, str]) -> None:
        """Make the secret's tags exactly ``tags``."""


class StepObserver(Protocol):
    """Told about each plan step, for logs and (later) metrics."""

    def step_finished(
        self, *, tenant_id: str, operation: str, step: str, duration_s: float, outcome: str, error_code: str | None
    ) -> None: ...
