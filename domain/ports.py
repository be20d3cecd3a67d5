"""Ports: the small Protocols the domain needs from the outside world, one role each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from domain.audit import AuditEvent
from domain.tenant import Cell, JobKind, Tenant
from domain.tiers import Group, TierTemplate


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


class UnitOfWork(Protocol):
    """One registry transaction: ``async with uow: ...; await uow.commit()``."""

    tenants: TenantRepository
    jobs: JobQueue
    events: AuditLog

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class UserPoolGateway(Protocol):
    """cognito-idp. Errors come out as domain CloudError subclasses."""

    async def find_user_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        """By id when given (None if gone), else by exact name. ``extra['domain']`` is the
        pool's hosted-UI domain or None."""

    async def create_user_pool(
        self, cell: Cell, *, name: str, template: TierTemplate, tags: dict[str, str]
    ) -> CloudResource: ...

    async def configure_mfa(self, cell: Cell, *, pool_id: str, template: TierTemplate) -> None: ...

    async def find_app_client(self, cell: Cell, *, pool_id: str, name: str) -> str | None: ...

    async def create_app_client(self, cell: Cell, *, pool_id: str, name: str, template: TierTemplate) -> str: ...

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

    async def create_user(self, cell: Cell, *, pool_id: str, username: str, email: str) -> None:
        """Raises CloudAlreadyExists when the username is taken."""

    async def add_user_to_group(self, cell: Cell, *, pool_id: str, username: str, group: str) -> None: ...

    async def set_deletion_protection(self, cell: Cell, *, pool_id: str, active: bool) -> None: ...

    async def delete_user_pool(self, cell: Cell, *, pool_id: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_owned_user_pools(self, cell: Cell) -> list[CloudResource]:
        """Every user pool in the cell's Region that carries the service's managed-by tag, with
        its tags (``tenants:tenant-id``) and ``extra`` as ``find_user_pool`` reports it."""


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
    ) -> CloudResource: ...

    async def set_roles(self, cell: Cell, *, identity_pool_id: str, roles: dict[str, str]) -> None: ...

    async def delete_identity_pool(self, cell: Cell, *, identity_pool_id: str) -> None:
        """Raises CloudNotFound when it is already gone."""

    async def list_owned_identity_pools(self, cell: Cell) -> list[CloudResource]:
        """Every identity pool in the cell's Region that carries the service's managed-by tag."""


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


class SecretStore(Protocol):
    """AWS Secrets Manager: where a confidential app client's secret is kept for the tenant.

    A secret value goes in and never comes back out: no method returns it, and a CloudResource
    describes a secret by name, ARN and tags only.
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


class StepObserver(Protocol):
    """Told about each plan step, for logs and (later) metrics."""

    def step_finished(
        self, *, tenant_id: str, operation: str, step: str, duration_s: float, outcome: str, error_code: str | None
    ) -> None: ...
