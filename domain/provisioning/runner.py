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
import random
import time
from collections.abc import Mapping
from typing import Any

from domain.audit import AuditEvent, worker_actor
from domain.errors import CloudError, DomainError, explain
from domain.lifecycle import (
    DEPROVISIONED,
    DEPROVISIONING_FAILED,
    PROVISIONING_FAILED,
    PROVISIONING_SUCCEEDED,
    lifecycle_event,
)
from domain.plan import PlanError, Step, release_dependents, run_plan
from domain.ports import Clock, Job, StepObserver, UnitOfWork, UnitOfWorkFactory
from domain.provisioning.context import FIRST_TRY, Gateways, ProvisioningSettings, TenantRun
from domain.provisioning.outputs import TenantOutputs
from domain.provisioning.plans import PLANS, Plans, StepHandler
from domain.tenant import JobKind, LastError, SettingsStatus, Tenant, TenantStatus
from domain.tiers import TierTemplate


class Superseded(Exception):
    """The tenant left the state this run works for (e.g. a DELETE arrived): stop quietly."""


class LeaseLost(Superseded):
    """Another worker took the job over (our lease expired): stop without writing anything."""


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
        plans: Plans = PLANS,
    ) -> None:
        self._plans = plans
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
        outputs: TenantOutputs,
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

    async def _attempt(self, handler: StepHandler, run: TenantRun) -> TenantOutputs:
        """Run a step, again after a retryable AWS error. Every try but a fresh tenant's first
        (module docstring) looks before it creates, so running it again after a lost response
        adopts what the lost call made."""
        s = self._settings
        for attempt in range(1, s.step_attempts + 1):
            FIRST_TRY.set(attempt == 1)  # this step's own task: other steps are not affected
            try:
                return await handler(run)
            except CloudError as exc:
                if not exc.retryable or exc.attempts > 1 or attempt == s.step_attempts:
                    raise
                await asyncio.sleep(random.uniform(0, min(s.step_backoff_max_s, s.step_backoff_s * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _execute(
        self,
        tenant: Tenant,
        run: TenantRun,
        steps: list[Step],
        done: list[str],
        record_completed: bool,
        fence: Job | None,
    ) -> LastError | None:
        # One registry write at a time (SQLite has a single writer anyway), in the order the steps
        # finished: asyncio.Lock is FIFO, so a step's record always commits before its dependents'.
        lock = asyncio.Lock()

        async def run_step(step: Step) -> None:
            handler = self._plans.handlers[step.name]
            started = time.perf_counter()
            outcome, code = "ok", None
            try:
                outputs = await self._attempt(handler, run)
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
        run = TenantRun(tenant, template, self._gateways, self._settings)
        run.fresh = first_run(tenant, fence)
        steps = self._plans.steps(run.scope())
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
        run = TenantRun(tenant, self._tiers.get(tenant.spec.tier), self._gateways, self._settings)
        try:
            error = await self._execute(tenant, run, self._plans.teardown, [], False, fence)
        except Superseded:
            return None
        if error is not None:
            return await self._finish(tenant_id, TenantStatus.DEPROVISIONING, error, fence)
        return await self._finish(tenant_id, TenantStatus.DELETED, None, fence)


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
        run = TenantRun(tenant, template, self._gateways, self._settings)
        try:
            error = await self._execute(tenant, run, self._plans.update, [], False, fence)
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
