"""Hand-written fakes for the domain's ports: an in-memory registry, a clock, an AWS "cloud".

No I/O anywhere. The fakes keep state the tests assert on (what a user would see in the registry
or in their AWS account) and are as strict as AWS where the domain's correctness depends on it:
deletion protection and a remaining domain block DeleteUserPool, a role with inline policies
cannot be deleted, IAM role names are unique case-insensitively, names follow AWS-FACTS.md.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from domain.audit import AuditEvent
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound, ResourceNotOwned, TenantConflict
from domain.lifecycle import LifecycleEvent
from domain.naming import (
    MANAGED_BY_VALUE,
    TAG_MANAGED_BY,
    TAG_TENANT_ID,
    is_valid_iam_path,
    is_valid_iam_policy_arn,
    is_valid_prefix_domain,
    is_valid_role_name,
    is_valid_secret_name,
)
from domain.ports import CloudResource, Job, SecretText
from domain.provisioning import DeprovisionTenant, Gateways, ProvisioningSettings, ProvisionTenant, UpdateTenantSettings
from domain.tenant import Cell, JobKind, Tenant, TenantSpec
from domain.tiers import Group, ResourceServer, TierTemplate, parse_tiers
from domain.usecases import DeleteTenant, GetTenant, ListTenants, OnboardTenant, RetryTenant, UpdateTenant

CELL = Cell(account_id="123456789012", region="us-east-1")
TIERS_FILE = Path(__file__).resolve().parents[2] / "service" / "tiers.toml"


@cache
def _shipped_tiers_cached() -> tuple[tuple[str, TierTemplate], ...]:
    with TIERS_FILE.open("rb") as fh:
        return tuple(parse_tiers(tomllib.load(fh)).items())


def shipped_tiers() -> dict[str, TierTemplate]:
    """The tier templates the service ships (service/tiers.toml), parsed by the domain."""
    return dict(_shipped_tiers_cached())


def shipped_tiers_document() -> dict[str, Any]:
    with TIERS_FILE.open("rb") as fh:
        return tomllib.load(fh)


# --------------------------------------------------------------------------------------------
# Clock
# --------------------------------------------------------------------------------------------


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class FixedClock(ManualClock):
    """A clock stuck at one instant."""

    def advance(self, seconds: float) -> datetime:
        raise AssertionError("FixedClock does not move; use ManualClock")


# --------------------------------------------------------------------------------------------
# Registry: tenants + jobs with transactions
# --------------------------------------------------------------------------------------------


@dataclass
class JobRow:
    id: int
    tenant_id: str
    kind: JobKind
    state: str  # pending | running | done
    created_at: datetime
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


class InMemoryRegistry:
    """The committed state plus a UnitOfWorkFactory over it: ``registry()`` opens a unit of work.

    Writes are staged in the unit of work and reach the committed state only on ``commit``;
    leaving the ``async with`` block without committing (or with an exception) discards them.
    Everything crosses the boundary as a deep copy, so mutating a Tenant that was read changes
    nothing until it is saved and committed.
    """

    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.jobs: dict[int, JobRow] = {}
        self.events: list[AuditEvent] = []  # committed, in id order
        self.outbox: list[LifecycleEvent] = []  # committed lifecycle events, in order
        self.commits = 0
        self._job_seq = 0
        self._event_seq = 0
        # method name -> callables run before that repository/queue/uow method (may raise).
        self._hooks: dict[str, list[Callable[[], None]]] = {}

    def __call__(self, *, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self, read_only=read_only)

    # -- test helpers -------------------------------------------------------------------------

    def before(self, method: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` (once) just before the next call of ``method`` (add, save, enqueue, commit...)."""
        self._hooks.setdefault(method, []).append(fn)

    def fail_next(self, method: str, error: BaseException) -> None:
        def boom() -> None:
            raise error

        self.before(method, boom)

    def _run_hooks(self, method: str) -> None:
        hooks = self._hooks.pop(method, [])
        for fn in hooks:
            fn()

    def next_job_id(self) -> int:
        self._job_seq += 1
        return self._job_seq

    def next_event_id(self) -> int:  # like a sequence: a rolled-back event leaves a gap
        self._event_seq += 1
        return self._event_seq

    def events_of(self, tenant_id: str) -> list[AuditEvent]:
        """The committed audit events of a tenant, oldest first."""
        return [e for e in self.events if e.tenant_id == tenant_id]

    def tenant(self, tenant_id: str) -> Tenant | None:
        """The committed tenant (a copy)."""
        found = self.tenants.get(tenant_id)
        return copy.deepcopy(found) if found else None

    def jobs_of(self, tenant_id: str) -> list[JobRow]:
        return [copy.deepcopy(j) for j in sorted(self.jobs.values(), key=lambda j: j.id) if j.tenant_id == tenant_id]

    def put(self, tenant: Tenant) -> None:
        """Write a tenant straight into the committed state (test set-up)."""
        self.tenants[tenant.tenant_id] = copy.deepcopy(tenant)


class InMemoryTenantRepository:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def _view(self, tenant_id: str) -> Tenant | None:
        if tenant_id in self._uow.staged_tenants:
            return self._uow.staged_tenants[tenant_id]
        return self._uow.registry.tenants.get(tenant_id)

    async def add(self, tenant: Tenant) -> None:
        self._uow.check_open()
        self._uow.registry._run_hooks("add")
        if self._view(tenant.tenant_id) is not None:
            raise TenantConflict(f"tenant {tenant.tenant_id!r} already exists")
        self._uow.staged_tenants[tenant.tenant_id] = copy.deepcopy(tenant)
        self._uow.new_tenants.add(tenant.tenant_id)

    async def get(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        self._uow.check_open()
        found = self._view(tenant_id)
        return copy.deepcopy(found) if found is not None else None

    async def save(self, tenant: Tenant) -> None:
        self._uow.check_open()
        self._uow.registry._run_hooks("save")
        if self._view(tenant.tenant_id) is None:
            raise AssertionError(f"save() of a tenant that was never added: {tenant.tenant_id}")
        self._uow.staged_tenants[tenant.tenant_id] = copy.deepcopy(tenant)

    async def list(self, *, status: str | None, tier: str | None, limit: int, after: str | None) -> list[Tenant]:
        self._uow.check_open()
        ids = sorted(set(self._uow.registry.tenants) | set(self._uow.staged_tenants))
        result: list[Tenant] = []
        for tenant_id in ids:
            tenant = self._view(tenant_id)
            assert tenant is not None
            if after is not None and tenant_id <= after:
                continue
            if status is not None and tenant.status.value != status:
                continue
            if tier is not None and tenant.spec.tier != tier:
                continue
            result.append(copy.deepcopy(tenant))
            if len(result) >= limit:
                break
        return result


class InMemoryJobQueue:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def _rows(self) -> list[JobRow]:
        rows = dict(self._uow.registry.jobs)
        rows.update(self._uow.staged_jobs)
        return [rows[k] for k in sorted(rows)]

    def _stage(self, row: JobRow) -> None:
        self._uow.staged_jobs[row.id] = copy.deepcopy(row)

    async def enqueue(self, tenant_id: str, kind: JobKind, now: datetime) -> None:
        self._uow.check_open()
        self._uow.registry._run_hooks("enqueue")
        row = JobRow(id=self._uow.registry.next_job_id(), tenant_id=tenant_id, kind=kind, state="pending", created_at=now)
        self._stage(row)

    async def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> Job | None:
        self._uow.check_open()
        rows = self._rows()
        busy = {
            r.tenant_id for r in rows if r.state == "running" and r.lease_expires_at is not None and r.lease_expires_at > now
        }
        for row in rows:
            runnable = row.state == "pending" or (
                row.state == "running" and row.lease_expires_at is not None and row.lease_expires_at <= now
            )
            if not runnable or row.tenant_id in busy:
                continue
            row = copy.deepcopy(row)
            row.state = "running"
            row.attempts += 1
            row.lease_owner = worker_id
            row.lease_expires_at = now + timedelta(seconds=lease_seconds)
            self._stage(row)
            # As SqlJobQueue.claim: the tenant's first job ever (jobs are kept once done).
            first = row.attempts == 1 and not any(r.tenant_id == row.tenant_id and r.id < row.id for r in rows)
            return replace(_job_of(row), first_for_tenant=first)
        return None

    async def claim_batch(self, worker_id: str, now: datetime, lease_seconds: float, limit: int) -> list[Job]:
        claimed: list[Job] = []
        while len(claimed) < max(1, limit):
            job = await self.claim(worker_id, now, lease_seconds)
            if job is None:
                break
            claimed.append(job)
        return claimed

    def _row(self, job: Job) -> JobRow | None:
        for row in self._rows():
            if row.id == job.id:
                return copy.deepcopy(row)
        return None

    async def holds(self, job: Job) -> bool:
        self._uow.check_open()
        row = self._row(job)
        return (
            row is not None
            and row.state == "running"
            and row.lease_owner == job.lease_owner
            and row.attempts == job.attempts
        )

    async def extend(self, job: Job, now: datetime, lease_seconds: float) -> bool:
        self._uow.check_open()
        row = self._row(job)
        if row is None or row.state != "running" or row.lease_owner != job.lease_owner:
            return False
        row.lease_expires_at = now + timedelta(seconds=lease_seconds)
        self._stage(row)
        return True

    async def complete(self, job: Job, now: datetime) -> None:
        self._uow.check_open()
        row = self._row(job)
        if row is not None:
            row.state = "done"
            row.lease_owner = None
            row.lease_expires_at = None
            self._stage(row)

    async def release(self, job: Job, now: datetime) -> None:
        self._uow.check_open()
        row = self._row(job)
        if row is not None and row.state == "running":
            row.state = "pending"
            row.lease_owner = None
            row.lease_expires_at = None
            self._stage(row)

    async def pending_count(self) -> int:
        self._uow.check_open()
        return sum(1 for r in self._rows() if r.state == "pending")


class InMemoryAuditLog:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def add(self, event: AuditEvent) -> None:
        self._uow.check_open()
        self._uow.registry._run_hooks("add_event")
        staged = replace(event, id=self._uow.registry.next_event_id(), detail=copy.deepcopy(event.detail))
        self._uow.staged_events.append(staged)

    async def list_for_tenant(self, tenant_id: str, *, limit: int, after_id: int | None) -> list[AuditEvent]:
        self._uow.check_open()
        events = [*self._uow.registry.events, *self._uow.staged_events]
        found = [e for e in events if e.tenant_id == tenant_id and (after_id is None or (e.id or 0) > after_id)]
        return found[:limit]


def _job_of(row: JobRow) -> Job:
    assert row.lease_owner is not None and row.lease_expires_at is not None
    return Job(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


class InMemoryOutbox:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def add(self, event: LifecycleEvent) -> None:
        self._uow.check_open()
        self._uow.registry._run_hooks("add_outbox")
        self._uow.staged_outbox.append(copy.deepcopy(event))


class InMemoryUnitOfWork:
    def __init__(self, registry: InMemoryRegistry, *, read_only: bool = False) -> None:
        self.registry = registry
        self.read_only = read_only
        self.staged_tenants: dict[str, Tenant] = {}
        self.new_tenants: set[str] = set()
        self.staged_jobs: dict[int, JobRow] = {}
        self.staged_events: list[AuditEvent] = []
        self.tenants = InMemoryTenantRepository(self)
        self.jobs = InMemoryJobQueue(self)
        self.events = InMemoryAuditLog(self)
        self.staged_outbox: list[LifecycleEvent] = []
        self.outbox = InMemoryOutbox(self)
        self._open = False
        self.committed = False

    def check_open(self) -> None:
        if not self._open:
            raise AssertionError("unit of work used outside its `async with` block")

    async def __aenter__(self) -> InMemoryUnitOfWork:
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.read_only and (self.staged_tenants or self.staged_jobs or self.staged_events or self.staged_outbox):
            raise AssertionError("a read-only unit of work staged writes")
        await self.rollback()
        self._open = False

    async def commit(self) -> None:
        self.check_open()
        self.registry._run_hooks("commit")
        for tenant_id in self.new_tenants:
            if tenant_id in self.registry.tenants:  # the unique constraint, checked at commit
                self.staged_tenants.clear()
                self.staged_jobs.clear()
                self.staged_events.clear()
                self.staged_outbox.clear()
                self.new_tenants.clear()
                raise TenantConflict(f"tenant {tenant_id!r} already exists")
        self.registry.tenants.update(self.staged_tenants)
        self.registry.jobs.update(self.staged_jobs)
        self.registry.events.extend(self.staged_events)
        self.registry.outbox.extend(self.staged_outbox)
        self.registry.commits += 1
        self.staged_tenants = {}
        self.staged_jobs = {}
        self.staged_events = []
        self.staged_outbox = []
        self.new_tenants = set()
        self.committed = True

    async def rollback(self) -> None:
        self.staged_tenants = {}
        self.staged_jobs = {}
        self.staged_events = []
        self.staged_outbox = []
        self.new_tenants = set()


# --------------------------------------------------------------------------------------------
# The cloud: cognito-idp, cognito-identity and IAM in memory
# --------------------------------------------------------------------------------------------

_COGNITO_NAME_RE = re.compile(r"^[\w\s+=,.@-]{1,128}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws:iam::\d{12}:role/(?:[\x21-\x7e]+/)*[\w+=,.@-]{1,64}$")
_PROVIDER_RE = re.compile(r"^cognito-idp\.([a-z0-9-]+)\.amazonaws\.com/([\w-]+_[0-9a-zA-Z]+)$")
INLINE_POLICY_LIMIT = 10_240  # IAM: aggregate inline policy size per role, in characters


@dataclass
class FakeUser:
    username: str
    email: str
    groups: set[str] = field(default_factory=set)


@dataclass
class FakeUserPool:
    id: str
    name: str
    arn: str
    cell: Cell
    tags: dict[str, str]
    deletion_protection: str  # ACTIVE | INACTIVE
    template: TierTemplate | None
    mfa: str = "OFF"
    mfa_methods: tuple[str, ...] = ()
    domain: str | None = None
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id -> {name, flows}
    groups: dict[str, Group] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    resource_servers: dict[str, Any] = field(default_factory=dict)
    scopes: set[str] = field(default_factory=set)  # custom scopes of its resource servers
    group_roles: dict[str, str] = field(default_factory=dict)
    tenant_id_attribute: bool = True  # False: a pool made before every pool had custom:tenant_id
    # provider name -> {"type", "details" (client_secret included, as Cognito keeps it), "attribute_mapping"}
    identity_providers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class FakeIdentityPool:
    id: str
    name: str
    cell: Cell
    tags: dict[str, str]
    provider_name: str
    client_id: str
    allow_unauthenticated: bool
    roles: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeRole:
    name: str
    path: str
    arn: str
    account_id: str
    tags: dict[str, str]
    trust_policy: dict[str, Any]
    description: str
    inline_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    permissions_boundary: str | None = None


@dataclass
class FakeSecret:
    name: str
    arn: str
    cell: Cell
    tags: dict[str, str]
    description: str
    versions: list[str]  # every value stored, oldest first; the last is AWSCURRENT

    @property
    def value(self) -> str:
        return self.versions[-1]


@dataclass(frozen=True)
class Call:
    method: str
    kwargs: dict[str, Any]


@dataclass
class _Fault:
    method: str
    nth: int  # the n-th matching call from registration triggers it
    error: BaseException
    lost_response: bool
    when: Callable[[dict[str, Any]], bool] | None = None
    seen: int = 0


def lost_response_error(method: str) -> CloudError:
    return CloudError(
        "RequestTimeout", f"{method}: the response never arrived (read timed out)", retryable=True, operation=method
    )


_Named = TypeVar("_Named", FakeUserPool, FakeIdentityPool)


def _prefer(same_name: list[_Named]) -> _Named | None:
    """As the gateways adopt among resources sharing a name (names are not unique in Cognito):
    one carrying the managed-by tag, the oldest first (``same_name`` is in creation order)."""
    return next((r for r in same_name if r.tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE), same_name[0] if same_name else None)


def _invalid(message: str) -> CloudError:
    return CloudError("InvalidParameterException", message, retryable=False)


class FakeCloud:
    """One AWS account's cognito-idp, cognito-identity and IAM, in memory.

    Implements UserPoolGateway, IdentityPoolGateway and IamGateway. Every call is logged in
    ``calls``. Faults: ``fail(method, error, on_call=n)`` makes the n-th call of ``method`` from
    now raise ``error`` without doing anything; ``lose_response(method, on_call=n)`` lets the n-th
    call do its work and then raise a retryable CloudError, as when the response never arrives.
    Both take ``when=`` to count only some calls (e.g. those for one role name).
    ``before(method, fn)`` awaits ``fn(**kwargs)`` ahead of the next call of ``method``.
    """

    def __init__(self) -> None:
        self.user_pools: dict[str, FakeUserPool] = {}
        self.identity_pools: dict[str, FakeIdentityPool] = {}
        self.roles: dict[tuple[str, str], FakeRole] = {}  # (account, lower-case name) -> role
        self.domains: dict[tuple[str, str], str] = {}  # (region, prefix domain) -> pool id
        self.secrets: dict[str, FakeSecret] = {}  # ARN -> Secrets Manager secret
        self.calls: list[Call] = []
        self._counts: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._hooks: dict[str, list[Callable[..., Awaitable[None]]]] = {}
        self._seq = 0

    # -- test controls --------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: BaseException,
        *,
        on_call: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The ``on_call``-th call of ``method`` from now (counting only calls whose keyword
        arguments satisfy ``when``) raises ``error`` and changes nothing."""
        self._check_method(method)
        self._faults.append(_Fault(method, on_call, error, lost_response=False, when=when))

    def lose_response(
        self,
        method: str,
        *,
        on_call: int = 1,
        error: BaseException | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Like ``fail``, but the call does its work first: the response is what gets lost."""
        self._check_method(method)
        self._faults.append(
            _Fault(method, on_call, error or lost_response_error(method), lost_response=True, when=when)
        )

    def before(self, method: str, fn: Callable[..., Awaitable[None]]) -> None:
        """Await ``fn(**kwargs)`` at the start of the next call of ``method`` (one call per hook,
        in the order registered)."""
        self._check_method(method)
        self._hooks.setdefault(method, []).append(fn)

    def count(self, method: str) -> int:
        return self._counts.get(method, 0)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def methods_called(self) -> list[str]:
        return [c.method for c in self.calls]

    def is_empty(self) -> bool:
        return not (self.user_pools or self.identity_pools or self.roles or self.domains or self.secrets)

    def tagged_resources(self) -> dict[str, dict[str, str]]:
        """Every resource that carries tags, from every store of the fake (found by looking, so
        a store added for a new kind of resource is included without listing it here), by
        "<store> <name>", with its tags."""
        found: dict[str, dict[str, str]] = {}
        for store, resources in vars(self).items():
            if not isinstance(resources, dict):
                continue
            for resource in resources.values():
                tags = getattr(resource, "tags", None)
                if isinstance(tags, dict):
                    found[f"{store} {getattr(resource, 'name', '?')}"] = dict(tags)
        return found

    def role(self, name: str, account_id: str = CELL.account_id) -> FakeRole | None:
        return self.roles.get((account_id, name.lower()))

    def pools_named(self, name: str) -> list[FakeUserPool]:
        return [p for p in self.user_pools.values() if p.name == name]

    def identity_pools_named(self, name: str) -> list[FakeIdentityPool]:
        return [p for p in self.identity_pools.values() if p.name == name]

    # Seeding resources that exist without the service having created them (test set-up).

    def seed_user_pool(
        self, name: str, *, tags: dict[str, str] | None = None, cell: Cell = CELL, deletion_protection: bool = False
    ) -> FakeUserPool:
        pool = self._new_user_pool(cell, name, tags or {}, None, "ACTIVE" if deletion_protection else "INACTIVE")
        return pool

    def seed_identity_pool(self, name: str, *, tags: dict[str, str] | None = None, cell: Cell = CELL) -> FakeIdentityPool:
        return self._new_identity_pool(cell, name, tags or {}, "cognito-idp.us-east-1.amazonaws.com/us-east-1_foreign", "c", False)

    def seed_role(
        self, name: str, *, tags: dict[str, str] | None = None, trust_policy: dict[str, Any] | None = None,
        cell: Cell = CELL, inline_policies: dict[str, dict[str, Any]] | None = None, path: str = "/",
    ) -> FakeRole:
        role = FakeRole(
            name=name,
            path=path,
            arn=f"arn:aws:iam::{cell.account_id}:role{path}{name}",
            account_id=cell.account_id,
            tags=dict(tags or {}),
            trust_policy=copy.deepcopy(trust_policy or {"Version": "2012-10-17", "Statement": []}),
            description="seeded",
            inline_policies=copy.deepcopy(inline_policies or {}),
        )
        self.roles[(cell.account_id, name.lower())] = role
        return role

    def seed_secret(self, name: str, value: str, *, tags: dict[str, str] | None = None, cell: Cell = CELL) -> FakeSecret:
        return self._new_secret(cell, name, value, tags or {}, "seeded")

    def secret_named(self, name: str, cell: Cell = CELL) -> FakeSecret | None:
        return self._secret_by(cell, name)

    def take_domain(self, domain: str, *, region: str = CELL.region, owner: str = "us-east-1_SomeoneElse") -> None:
        """A prefix domain held by another AWS customer's pool."""
        self.domains[(region, domain)] = owner

    # -- plumbing -------------------------------------------------------------------------------

    def _check_method(self, method: str) -> None:
        if not callable(getattr(self, method, None)) or method.startswith("_"):
            raise AssertionError(f"FakeCloud has no gateway method {method!r}")

    async def _enter(self, method: str, **kwargs: Any) -> _Fault | None:
        self.calls.append(Call(method, copy.deepcopy(kwargs)))
        self._counts[method] = self._counts.get(method, 0) + 1
        hooks = self._hooks.get(method)
        if hooks:
            await hooks.pop(0)(**kwargs)
        for fault in list(self._faults):
            if fault.method != method or (fault.when is not None and not fault.when(kwargs)):
                continue
            fault.seen += 1
            if fault.seen == fault.nth:
                self._faults.remove(fault)
                if not fault.lost_response:
                    raise fault.error
                return fault
        return None

    @staticmethod
    def _exit(fault: _Fault | None) -> None:
        if fault is not None:
            raise fault.error

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _pool(self, cell: Cell, pool_id: str) -> FakeUserPool:
        pool = self.user_pools.get(pool_id)
        if pool is None or pool.cell != cell:
            raise CloudNotFound("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
        return pool

    def _new_user_pool(
        self, cell: Cell, name: str, tags: dict[str, str], template: TierTemplate | None, protection: str
    ) -> FakeUserPool:
        pool_id = f"{cell.region}_Fake{self._next():05d}"
        pool = FakeUserPool(
            id=pool_id,
            name=name,
            arn=f"arn:aws:cognito-idp:{cell.region}:{cell.account_id}:userpool/{pool_id}",
            cell=cell,
            tags=dict(tags),
            deletion_protection=protection,
            template=template,
        )
        self.user_pools[pool_id] = pool
        return pool

    def _new_identity_pool(
        self, cell: Cell, name: str, tags: dict[str, str], provider: str, client_id: str, unauth: bool
    ) -> FakeIdentityPool:
        pool = FakeIdentityPool(
            id=f"{cell.region}:00000000-0000-0000-0000-{self._next():012d}",
            name=name,
            cell=cell,
            tags=dict(tags),
            provider_name=provider,
            client_id=client_id,
            allow_unauthenticated=unauth,
        )
        self.identity_pools[pool.id] = pool
        return pool

    @staticmethod
    def _user_pool_resource(pool: FakeUserPool) -> CloudResource:
        return CloudResource(
            id=pool.id,
            name=pool.name,
            arn=pool.arn,
            tags=dict(pool.tags),
            extra={
                "domain": pool.domain,
                "deletion_protection": pool.deletion_protection,
                "tenant_id_attribute": pool.tenant_id_attribute,
            },
        )

    # -- UserPoolGateway ------------------------------------------------------------------------

    async def find_user_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        fault = await self._enter("find_user_pool", cell=cell, pool_id=pool_id, name=name)
        if pool_id is not None:
            pool = self.user_pools.get(pool_id)
            found = pool if pool is not None and pool.cell == cell else None
        else:
            found = _prefer([p for p in self.user_pools.values() if p.cell == cell and p.name == name])
        self._exit(fault)
        return self._user_pool_resource(found) if found else None

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
        fault = await self._enter("create_user_pool", cell=cell, name=name, template=template.name, tags=tags)
        if not _COGNITO_NAME_RE.fullmatch(name):
            raise _invalid(f"user pool name {name!r} breaks [\\w\\s+=,.@-]{{1,128}}")
        protection = "ACTIVE" if template.deletion_protection else "INACTIVE"
        pool = self._new_user_pool(cell, name, tags, template, protection)
        self._exit(fault)
        return self._user_pool_resource(pool)

    async def configure_mfa(
        self,
        cell: Cell,
        *,
        pool_id: str,
        template: TierTemplate,
        display_name: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        fault = await self._enter("configure_mfa", cell=cell, pool_id=pool_id, mfa=template.mfa)
        pool = self._pool(cell, pool_id)
        if template.mfa != "OFF" and not template.mfa_methods:
            raise _invalid("MFA ON or OPTIONAL needs a second factor")
        pool.mfa = template.mfa
        pool.mfa_methods = tuple(template.mfa_methods)
        self._exit(fault)

    async def find_app_client(self, cell: Cell, *, pool_id: str, name: str) -> str | None:
        fault = await self._enter("find_app_client", cell=cell, pool_id=pool_id, name=name)
        pool = self._pool(cell, pool_id)
        found = next((cid for cid, c in pool.clients.items() if c["name"] == name), None)
        self._exit(fault)
        return found

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
        fault = await self._enter("create_app_client", cell=cell, pool_id=pool_id, name=name)
        pool = self._pool(cell, pool_id)
        if not _COGNITO_NAME_RE.fullmatch(name):
            raise _invalid(f"app client name {name!r} breaks [\\w\\s+=,.@-]{{1,128}}")
        client_id = f"client{self._next():020d}"
        app = template.clients[client or template.primary_client]
        pool.clients[client_id] = {
            "name": name,
            "template_client": client or template.primary_client,
            "explicit_auth_flows": tuple(app.explicit_auth_flows),
            "generate_secret": app.generate_secret,
            "oauth_flows": tuple(app.oauth_flows),
            "oauth_scopes": tuple(app.oauth_scopes),
            "callback_urls": tuple(callback_urls or app.callback_urls),
            "logout_urls": tuple(logout_urls or app.logout_urls),
            # As app_client_request: a machine client signs no users in, so COGNITO only.
            "identity_providers": ("COGNITO",) if app.is_machine else ("COGNITO", *(identity_providers or ())),
        }
        missing = set(identity_providers or ()) - set(pool.identity_providers)
        if missing:
            raise _invalid(f"The provider {sorted(missing)[0]} does not exist for User Pool {pool_id}")
        unknown = set(app.oauth_scopes) - {"openid", "email", "phone", "profile", "aws.cognito.signin.user.admin"} - pool.scopes
        if unknown:
            raise _invalid(f"Invalid scope requested: {sorted(unknown)}")
        if app.generate_secret:
            pool.clients[client_id]["secret"] = f"fake-client-secret-{self._next():08d}-{'s' * 30}"
        self._exit(fault)
        return client_id

    async def client_secret(self, cell: Cell, *, pool_id: str, client_id: str) -> SecretText:
        fault = await self._enter("client_secret", cell=cell, pool_id=pool_id, client_id=client_id)
        client = self._pool(cell, pool_id).clients.get(client_id)
        if client is None:
            raise CloudNotFound("ResourceNotFoundException", f"Client {client_id} does not exist.")
        if not client.get("secret"):
            raise CloudError("AppClientHasNoSecret", f"app client {client_id} has no secret")
        self._exit(fault)
        return SecretText(client["secret"])

    async def create_group(self, cell: Cell, *, pool_id: str, group: Group) -> None:
        fault = await self._enter("create_group", cell=cell, pool_id=pool_id, group=group.name)
        pool = self._pool(cell, pool_id)
        if group.name in pool.groups:
            raise CloudAlreadyExists("GroupExistsException", f"A group with the name {group.name} already exists.")
        pool.groups[group.name] = group
        self._exit(fault)

    async def domain_owner(self, cell: Cell, *, domain: str) -> str | None:
        fault = await self._enter("domain_owner", cell=cell, domain=domain)
        owner = self.domains.get((cell.region, domain))
        self._exit(fault)
        return owner

    async def create_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None:
        fault = await self._enter("create_domain", cell=cell, pool_id=pool_id, domain=domain)
        pool = self._pool(cell, pool_id)
        if not is_valid_prefix_domain(domain):
            raise _invalid(f"domain {domain!r} is not a valid prefix domain")
        if (cell.region, domain) in self.domains:
            raise _invalid("Domain already associated with another user pool.")
        if pool.domain is not None:
            raise _invalid(f"user pool {pool_id} already has a domain configured.")
        self.domains[(cell.region, domain)] = pool_id
        pool.domain = domain
        self._exit(fault)

    async def delete_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None:
        fault = await self._enter("delete_domain", cell=cell, pool_id=pool_id, domain=domain)
        pool = self._pool(cell, pool_id)
        owner = self.domains.get((cell.region, domain))
        if owner is None:
            raise CloudNotFound("ResourceNotFoundException", f"domain {domain} does not exist")
        if owner != pool_id:
            raise _invalid(f"domain {domain} belongs to another user pool")
        del self.domains[(cell.region, domain)]
        pool.domain = None
        self._exit(fault)

    @staticmethod
    def _user_key(pool: FakeUserPool, username: str) -> str:
        case_sensitive = pool.template.case_sensitive_usernames if pool.template else False
        return username if case_sensitive else username.lower()

    async def user_exists(self, cell: Cell, *, pool_id: str, username: str) -> bool:
        fault = await self._enter("user_exists", cell=cell, pool_id=pool_id, username=username)
        pool = self._pool(cell, pool_id)
        exists = self._user_key(pool, username) in pool.users
        self._exit(fault)
        return exists

    async def ensure_resource_server(self, cell: Cell, *, pool_id: str, server: ResourceServer) -> None:
        fault = await self._enter("ensure_resource_server", cell=cell, pool_id=pool_id, identifier=server.identifier)
        pool = self._pool(cell, pool_id)
        pool.resource_servers[server.identifier] = server
        pool.scopes |= server.scope_names()
        self._exit(fault)

    async def set_group_role(self, cell: Cell, *, pool_id: str, group: str, role_arn: str) -> None:
        fault = await self._enter("set_group_role", cell=cell, pool_id=pool_id, group=group, role_arn=role_arn)
        pool = self._pool(cell, pool_id)
        if group not in pool.groups:
            raise CloudNotFound("ResourceNotFoundException", "Group not found.")
        pool.group_roles[group] = role_arn
        self._exit(fault)

    async def create_user(
        self, cell: Cell, *, pool_id: str, username: str, email: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        fault = await self._enter(
            "create_user", cell=cell, pool_id=pool_id, username=username, email=email, attributes=dict(attributes or {})
        )
        pool = self._pool(cell, pool_id)
        if pool.template is not None and "email" in pool.template.username_attributes and "@" not in username:
            raise _invalid("Username should be an email.")
        key = self._user_key(pool, username)
        if key in pool.users:
            raise CloudAlreadyExists("UsernameExistsException", "User account already exists")
        pool.users[key] = FakeUser(username=username, email=email)
        self._exit(fault)

    async def add_user_to_group(self, cell: Cell, *, pool_id: str, username: str, group: str) -> None:
        fault = await self._enter("add_user_to_group", cell=cell, pool_id=pool_id, username=username, group=group)
        pool = self._pool(cell, pool_id)
        user = pool.users.get(self._user_key(pool, username))
        if user is None:
            raise CloudNotFound("UserNotFoundException", "User does not exist.")
        if group not in pool.groups:
            raise CloudNotFound("ResourceNotFoundException", "Group not found.")
        user.groups.add(group)
        self._exit(fault)

    async def set_deletion_protection(self, cell: Cell, *, pool_id: str, active: bool) -> None:
        fault = await self._enter("set_deletion_protection", cell=cell, pool_id=pool_id, active=active)
        self._pool(cell, pool_id).deletion_protection = "ACTIVE" if active else "INACTIVE"
        self._exit(fault)

    async def delete_user_pool(self, cell: Cell, *, pool_id: str) -> None:
        fault = await self._enter("delete_user_pool", cell=cell, pool_id=pool_id)
        pool = self._pool(cell, pool_id)
        if pool.deletion_protection == "ACTIVE":
            raise _invalid("The user pool cannot be deleted because deletion protection is activated.")
        if pool.domain is not None:
            raise _invalid("User pool cannot be deleted. It has a domain configured that should be deleted first.")
        del self.user_pools[pool_id]
        self._exit(fault)

    # -- the tenant's identity providers and settings --

    async def describe_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> dict[str, Any] | None:
        fault = await self._enter("describe_identity_provider", cell=cell, pool_id=pool_id, name=name)
        # As the gateway: DescribeIdentityProvider's ResourceNotFoundException, for the pool too, is None.
        pool = self.user_pools.get(pool_id)
        found = pool.identity_providers.get(name) if pool is not None and pool.cell == cell else None
        self._exit(fault)
        if found is None:
            return None
        details = {k: v for k, v in found["details"].items() if k != "client_secret"}
        return {"type": found["type"], "details": details, "attribute_mapping": dict(found["attribute_mapping"])}

    async def put_identity_provider(
        self, cell: Cell, *, pool_id: str, provider: Any, client_secret: SecretText | None, exists: bool
    ) -> None:
        fault = await self._enter("put_identity_provider", cell=cell, pool_id=pool_id, name=provider.name, exists=exists)
        if client_secret is not None and not isinstance(client_secret, SecretText):
            raise AssertionError("a secret value travels as SecretText, never as a bare string")
        pool = self._pool(cell, pool_id)
        if exists and provider.name not in pool.identity_providers:
            raise CloudNotFound("ResourceNotFoundException", f"provider {provider.name} not found")
        if not exists and provider.name in pool.identity_providers:
            raise CloudError("DuplicateProviderException", f"A provider with the name {provider.name} already exists.")
        pool.identity_providers[provider.name] = {
            "type": provider.type,
            "details": provider.provider_details(client_secret.reveal() if client_secret else None),
            "attribute_mapping": dict(provider.attribute_mapping),
        }
        self._exit(fault)

    async def delete_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> None:
        fault = await self._enter("delete_identity_provider", cell=cell, pool_id=pool_id, name=name)
        pool = self._pool(cell, pool_id)
        if pool.identity_providers.pop(name, None) is None:
            raise CloudNotFound("ResourceNotFoundException", f"provider {name} not found")
        self._exit(fault)

    async def list_identity_providers(self, cell: Cell, *, pool_id: str) -> list[str]:
        fault = await self._enter("list_identity_providers", cell=cell, pool_id=pool_id)
        names = sorted(self._pool(cell, pool_id).identity_providers)
        self._exit(fault)
        return names

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
        fault = await self._enter("update_app_client", cell=cell, pool_id=pool_id, client_id=client_id, name=name)
        pool = self._pool(cell, pool_id)
        found = pool.clients.get(client_id)
        if found is None:
            raise CloudNotFound("ResourceNotFoundException", f"Client {client_id} does not exist.")
        unknown = set(identity_providers or ()) - set(pool.identity_providers)
        if unknown:
            raise _invalid(f"The provider {sorted(unknown)[0]} does not exist for User Pool {pool_id}")
        app = template.clients[client or template.primary_client]
        found["callback_urls"] = tuple(callback_urls or app.callback_urls)
        found["logout_urls"] = tuple(logout_urls or app.logout_urls)
        found["identity_providers"] = ("COGNITO",) if app.is_machine else ("COGNITO", *(identity_providers or ()))
        self._exit(fault)

    async def update_user_pool(
        self, cell: Cell, *, pool_id: str, template: TierTemplate, tags: dict[str, str], display_name: str, tenant_id: str
    ) -> None:
        fault = await self._enter("update_user_pool", cell=cell, pool_id=pool_id, display_name=display_name)
        pool = self._pool(cell, pool_id)
        pool.tags = dict(tags)
        pool.display_name = display_name  # type: ignore[attr-defined]
        self._exit(fault)

    async def set_user_pool_tags(self, cell: Cell, *, pool_arn: str, tags: dict[str, str]) -> None:
        fault = await self._enter("set_user_pool_tags", cell=cell, pool_arn=pool_arn, tags=tags)
        pool = next((p for p in self.user_pools.values() if p.arn == pool_arn), None)
        if pool is None:
            raise CloudNotFound("ResourceNotFoundException", f"{pool_arn} not found")
        pool.tags = dict(tags)
        self._exit(fault)

    async def set_identity_pool_tags(self, cell: Cell, *, identity_pool_id: str, tags: dict[str, str]) -> None:
        fault = await self._enter("set_identity_pool_tags", cell=cell, identity_pool_id=identity_pool_id, tags=tags)
        pool = self.identity_pools.get(identity_pool_id)
        if pool is None:
            raise CloudNotFound("ResourceNotFoundException", f"{identity_pool_id} not found")
        pool.tags = dict(tags)
        self._exit(fault)

    async def list_owned_user_pools(self, cell: Cell) -> list[CloudResource]:
        fault = await self._enter("list_owned_user_pools", cell=cell)
        owned = [
            self._user_pool_resource(p)
            for p in self.user_pools.values()
            if p.cell == cell and p.tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE
        ]
        self._exit(fault)
        return owned

    # -- IdentityPoolGateway ----------------------------------------------------------------------

    @staticmethod
    def _identity_pool_resource(pool: FakeIdentityPool) -> CloudResource:
        return CloudResource(id=pool.id, name=pool.name, tags=dict(pool.tags), extra={"roles": dict(pool.roles)})

    async def find_identity_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        fault = await self._enter("find_identity_pool", cell=cell, pool_id=pool_id, name=name)
        if pool_id is not None:
            pool = self.identity_pools.get(pool_id)
            found = pool if pool is not None and pool.cell == cell else None
        else:
            found = _prefer([p for p in self.identity_pools.values() if p.cell == cell and p.name == name])
        self._exit(fault)
        return self._identity_pool_resource(found) if found else None

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
        fault = await self._enter(
            "create_identity_pool", cell=cell, name=name, provider_name=provider_name, client_id=client_id,
            allow_unauthenticated=allow_unauthenticated, tags=tags, client_ids=list(client_ids),
        )
        if not _COGNITO_NAME_RE.fullmatch(name):
            raise _invalid(f"identity pool name {name!r} breaks [\\w\\s+=,.@-]{{1,128}}")
        match = _PROVIDER_RE.fullmatch(provider_name)
        if match is None or match.group(1) != cell.region:
            raise _invalid(f"bad provider name {provider_name!r}")
        pool = self._new_identity_pool(cell, name, tags, provider_name, client_id, allow_unauthenticated)
        self._exit(fault)
        return self._identity_pool_resource(pool)

    async def set_roles(
        self, cell: Cell, *, identity_pool_id: str, roles: dict[str, str], role_mappings: dict[str, Any] | None = None
    ) -> None:
        fault = await self._enter(
            "set_roles", cell=cell, identity_pool_id=identity_pool_id, roles=roles, role_mappings=role_mappings
        )
        pool = self.identity_pools.get(identity_pool_id)
        if pool is None or pool.cell != cell:
            raise CloudNotFound("ResourceNotFoundException", f"IdentityPool '{identity_pool_id}' not found.")
        if not set(roles) <= {"authenticated", "unauthenticated"}:
            raise _invalid(f"unknown role keys {sorted(roles)}")
        for arn in roles.values():
            if not _ROLE_ARN_RE.fullmatch(arn or ""):
                raise _invalid(f"{arn!r} is not a role ARN")
        pool.roles = dict(roles)
        self._exit(fault)

    async def delete_identity_pool(self, cell: Cell, *, identity_pool_id: str) -> None:
        fault = await self._enter("delete_identity_pool", cell=cell, identity_pool_id=identity_pool_id)
        pool = self.identity_pools.get(identity_pool_id)
        if pool is None or pool.cell != cell:
            raise CloudNotFound("ResourceNotFoundException", f"IdentityPool '{identity_pool_id}' not found.")
        del self.identity_pools[identity_pool_id]
        self._exit(fault)

    async def list_owned_identity_pools(self, cell: Cell) -> list[CloudResource]:
        fault = await self._enter("list_owned_identity_pools", cell=cell)
        owned = [
            self._identity_pool_resource(p)
            for p in self.identity_pools.values()
            if p.cell == cell and p.tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE
        ]
        self._exit(fault)
        return owned

    # -- IamGateway -----------------------------------------------------------------------------

    def _role(self, cell: Cell, name: str) -> FakeRole:
        role = self.roles.get((cell.account_id, name.lower()))
        if role is None:
            raise CloudNotFound("NoSuchEntity", f"The role with name {name} cannot be found.")
        return role

    @staticmethod
    def _role_resource(role: FakeRole) -> CloudResource:
        return CloudResource(
            id=role.name, name=role.name, arn=role.arn, tags=dict(role.tags),
            extra={"trust_policy": copy.deepcopy(role.trust_policy), "permissions_boundary": role.permissions_boundary},
        )

    async def get_role(self, cell: Cell, *, name: str) -> CloudResource | None:
        fault = await self._enter("get_role", cell=cell, name=name)
        role = self.roles.get((cell.account_id, name.lower()))
        self._exit(fault)
        return self._role_resource(role) if role else None

    async def create_role(
        self, cell: Cell, *, name: str, path: str, trust_policy: dict[str, Any], tags: dict[str, str], description: str,
        permissions_boundary: str | None = None,
    ) -> CloudResource:
        fault = await self._enter(
            "create_role", cell=cell, name=name, path=path, trust_policy=trust_policy, tags=tags, description=description,
            permissions_boundary=permissions_boundary,
        )
        if permissions_boundary is not None and not is_valid_iam_policy_arn(permissions_boundary):
            raise CloudError("ValidationError", f"{permissions_boundary!r} is not a policy ARN")
        if not is_valid_role_name(name):
            raise CloudError("ValidationError", f"role name {name!r} breaks IAM's rules")
        if not is_valid_iam_path(path):
            raise CloudError("ValidationError", f"path {path!r} breaks IAM's rules")
        if len(description) > 1000:
            raise CloudError("ValidationError", "description longer than 1000 characters")
        json.dumps(trust_policy)
        if (cell.account_id, name.lower()) in self.roles:
            raise CloudAlreadyExists("EntityAlreadyExists", f"Role with name {name} already exists.")
        role = FakeRole(
            name=name,
            path=path,
            arn=f"arn:aws:iam::{cell.account_id}:role{path}{name}",
            account_id=cell.account_id,
            tags=dict(tags),
            trust_policy=copy.deepcopy(trust_policy),
            description=description,
            permissions_boundary=permissions_boundary,
        )
        self.roles[(cell.account_id, name.lower())] = role
        self._exit(fault)
        return self._role_resource(role)

    async def set_permissions_boundary(self, cell: Cell, *, name: str, boundary_arn: str) -> None:
        fault = await self._enter("set_permissions_boundary", cell=cell, name=name, boundary_arn=boundary_arn)
        if not is_valid_iam_policy_arn(boundary_arn):
            raise CloudError("ValidationError", f"{boundary_arn!r} is not a policy ARN")
        self._role(cell, name).permissions_boundary = boundary_arn
        self._exit(fault)

    async def update_trust_policy(self, cell: Cell, *, name: str, trust_policy: dict[str, Any]) -> None:
        fault = await self._enter("update_trust_policy", cell=cell, name=name, trust_policy=trust_policy)
        json.dumps(trust_policy)
        self._role(cell, name).trust_policy = copy.deepcopy(trust_policy)
        self._exit(fault)

    async def put_role_policy(
        self, cell: Cell, *, role_name: str, policy_name: str, document: dict[str, Any]
    ) -> None:
        fault = await self._enter(
            "put_role_policy", cell=cell, role_name=role_name, policy_name=policy_name, document=document
        )
        role = self._role(cell, role_name)
        if not re.fullmatch(r"[\w+=,.@-]{1,128}", policy_name):
            raise CloudError("ValidationError", f"policy name {policy_name!r} breaks IAM's rules")
        others = sum(len(json.dumps(d)) for n, d in role.inline_policies.items() if n != policy_name)
        if others + len(json.dumps(document)) > INLINE_POLICY_LIMIT:
            raise CloudError("LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role")
        role.inline_policies[policy_name] = copy.deepcopy(document)
        self._exit(fault)

    async def list_role_policies(self, cell: Cell, *, role_name: str) -> list[str]:
        fault = await self._enter("list_role_policies", cell=cell, role_name=role_name)
        names = sorted(self._role(cell, role_name).inline_policies)
        self._exit(fault)
        return names

    async def delete_role_policy(self, cell: Cell, *, role_name: str, policy_name: str) -> None:
        fault = await self._enter("delete_role_policy", cell=cell, role_name=role_name, policy_name=policy_name)
        role = self._role(cell, role_name)
        if policy_name not in role.inline_policies:
            raise CloudNotFound("NoSuchEntity", f"The role policy with name {policy_name} cannot be found.")
        del role.inline_policies[policy_name]
        self._exit(fault)

    async def delete_role(self, cell: Cell, *, name: str) -> None:
        fault = await self._enter("delete_role", cell=cell, name=name)
        role = self._role(cell, name)
        if role.inline_policies:
            raise CloudError("DeleteConflict", "Cannot delete entity, must delete policies first.")
        del self.roles[(cell.account_id, name.lower())]
        self._exit(fault)

    async def set_role_tags(self, cell: Cell, *, name: str, tags: dict[str, str]) -> None:
        fault = await self._enter("set_role_tags", cell=cell, name=name, tags=tags)
        self._role(cell, name).tags = dict(tags)
        self._exit(fault)

    async def list_owned_roles(self, cell: Cell, *, path_prefix: str) -> list[CloudResource]:
        fault = await self._enter("list_owned_roles", cell=cell, path_prefix=path_prefix)
        owned = [
            self._role_resource(r)
            for r in self.roles.values()
            if r.account_id == cell.account_id
            and r.path.startswith(path_prefix)
            and r.tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE
        ]
        self._exit(fault)
        return owned


    # -- SecretStore ------------------------------------------------------------------------------

    def _new_secret(self, cell: Cell, name: str, value: str, tags: dict[str, str], description: str) -> FakeSecret:
        if not is_valid_secret_name(name):
            raise CloudError("ValidationException", f"secret name {name!r} breaks Secrets Manager's rules")
        if not 1 <= len(value) <= 65_536 or len(description) > 2048:
            raise CloudError("ValidationException", "secret value or description out of bounds")
        arn = f"arn:aws:secretsmanager:{cell.region}:{cell.account_id}:secret:{name}-{self._next():06d}"
        secret = FakeSecret(name=name, arn=arn, cell=cell, tags=dict(tags), description=description, versions=[value])
        self.secrets[arn] = secret
        return secret

    def _secret_by(self, cell: Cell, name_or_arn: str) -> FakeSecret | None:
        return next(
            (s for s in self.secrets.values() if s.cell == cell and name_or_arn in (s.name, s.arn)), None
        )

    @staticmethod
    def _secret_resource(secret: FakeSecret) -> CloudResource:
        # Never the value: a CloudResource describes a secret by name, ARN and tags.
        return CloudResource(id=secret.arn, name=secret.name, arn=secret.arn, tags=dict(secret.tags), extra={"deleted": False})

    async def find_secret(self, cell: Cell, *, name: str) -> CloudResource | None:
        fault = await self._enter("find_secret", cell=cell, name=name)
        found = self._secret_by(cell, name)
        self._exit(fault)
        return self._secret_resource(found) if found else None

    async def put_client_secret(
        self, cell: Cell, *, name: str, secret_value: SecretText, tags: dict[str, str], description: str
    ) -> CloudResource:
        fault = await self._enter(
            "put_client_secret", cell=cell, name=name, secret_value=secret_value, tags=tags, description=description
        )
        if not isinstance(secret_value, SecretText):
            raise AssertionError("a secret value travels as SecretText, never as a bare string")
        existing = self._secret_by(cell, name)
        if existing is None:
            secret = self._new_secret(cell, name, secret_value.reveal(), tags, description)
        else:  # CreateSecret said ResourceExistsException: adopt ours, refuse anyone else's
            if any(existing.tags.get(k) != tags.get(k) for k in (TAG_TENANT_ID, TAG_MANAGED_BY)):
                raise ResourceNotOwned(f"a secret named {name!r} already exists and is not this tenant's")
            existing.versions.append(secret_value.reveal())
            secret = existing
        self._exit(fault)
        return self._secret_resource(secret)

    async def delete_secret(self, cell: Cell, *, arn_or_name: str) -> None:
        fault = await self._enter("delete_secret", cell=cell, arn_or_name=arn_or_name)
        found = self._secret_by(cell, arn_or_name)
        if found is None:
            raise CloudNotFound("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        del self.secrets[found.arn]
        self._exit(fault)

    async def read_secret(self, cell: Cell, *, arn_or_name: str) -> SecretText:
        fault = await self._enter("read_secret", cell=cell, arn_or_name=arn_or_name)
        found = self._secret_by(cell, arn_or_name)
        if found is None:
            raise CloudNotFound("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        self._exit(fault)
        return SecretText(found.value)

    async def set_secret_tags(self, cell: Cell, *, arn_or_name: str, tags: dict[str, str]) -> None:
        fault = await self._enter("set_secret_tags", cell=cell, arn_or_name=arn_or_name, tags=tags)
        found = self._secret_by(cell, arn_or_name)
        if found is None:
            raise CloudNotFound("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        found.tags = dict(tags)
        self._exit(fault)

    async def list_secrets_with_prefix(self, cell: Cell, *, prefix: str) -> list[CloudResource]:
        # ListSecrets' name filter: a case-sensitive prefix match, whatever follows the prefix.
        fault = await self._enter("list_secrets_with_prefix", cell=cell, prefix=prefix)
        found = [self._secret_resource(s) for s in self.secrets.values() if s.cell == cell and s.name.startswith(prefix)]
        self._exit(fault)
        return found

    async def list_owned_secrets(self, cell: Cell) -> list[CloudResource]:
        fault = await self._enter("list_owned_secrets", cell=cell)
        owned = [
            self._secret_resource(s)
            for s in self.secrets.values()
            if s.cell == cell and s.tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE
        ]
        self._exit(fault)
        return owned


# --------------------------------------------------------------------------------------------
# StepObserver
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepEvent:
    tenant_id: str
    operation: str
    step: str
    duration_s: float
    outcome: str
    error_code: str | None


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[StepEvent] = []

    def step_finished(
        self, *, tenant_id: str, operation: str, step: str, duration_s: float, outcome: str, error_code: str | None
    ) -> None:
        self.events.append(StepEvent(tenant_id, operation, step, duration_s, outcome, error_code))

    def steps(self, *, operation: str | None = None, outcome: str | None = None) -> list[str]:
        return [
            e.step
            for e in self.events
            if (operation is None or e.operation == operation) and (outcome is None or e.outcome == outcome)
        ]


# --------------------------------------------------------------------------------------------
# Everything wired together, as the composition root would
# --------------------------------------------------------------------------------------------


class World:
    """The domain's use cases over the fakes, for one cell and the shipped tiers."""

    def __init__(
        self,
        *,
        tiers: dict[str, TierTemplate] | None = None,
        settings: ProvisioningSettings | None = None,
        cell: Cell = CELL,
    ) -> None:
        self.registry = InMemoryRegistry()
        self.cloud = FakeCloud()
        self.clock = ManualClock()
        self.observer = RecordingObserver()
        self.tiers = shipped_tiers() if tiers is None else tiers
        # One attempt per step unless a test asks for step retries: most tests look at how a
        # failure is recorded and resumed, which in-run retries would hide.
        self.settings = settings or ProvisioningSettings(step_attempts=1, step_backoff_s=0.0)
        self.cell = cell
        gateways = Gateways(user_pools=self.cloud, identity_pools=self.cloud, iam=self.cloud, secrets=self.cloud)
        args = (self.registry, gateways, self.tiers, self.clock, self.settings, self.observer)
        self.provision = ProvisionTenant(*args)
        self.deprovision = DeprovisionTenant(*args)
        self.onboard = OnboardTenant(self.registry, self.tiers, self.clock, cell, secrets=self.cloud)
        self.update = UpdateTenant(self.registry, self.tiers, self.clock, secrets=self.cloud)
        self.apply_settings = UpdateTenantSettings(*args)
        self.get = GetTenant(self.registry)
        self.list = ListTenants(self.registry)
        self.delete = DeleteTenant(self.registry, self.clock)
        self.retry = RetryTenant(self.registry, self.tiers, self.clock)

    async def onboard_spec(
        self, tenant_id: str = "acme", tier: str = "basic", *, admin_email: str | None = None, display_name: str = "Acme"
    ) -> TenantSpec:
        spec = TenantSpec(tenant_id=tenant_id, tier=tier, display_name=display_name, admin_email=admin_email)
        await self.onboard(spec)
        return spec

    async def active_tenant(self, tenant_id: str = "acme", tier: str = "basic", *, admin_email: str | None = None) -> Tenant:
        await self.onboard_spec(tenant_id, tier, admin_email=admin_email)
        await self.provision(tenant_id)
        tenant = self.registry.tenant(tenant_id)
        assert tenant is not None and tenant.status.value == "active", tenant
        return tenant
