"""Prometheus metrics (``GET /metrics``), one ``CollectorRegistry`` per app.

Not the process-global default registry: several apps in one process (the tests) each count
their own. Fed from three places:

* the worker's job handlers, wrapped by ``timed_job``: onboarding and teardown durations by tier
  and outcome;
* the provisioning ``StepObserver`` (``MetricsStepObserver``): step durations;
* botocore event hooks on every AWS client (``aws_hooks``): calls by service, operation and outcome.

Tenants by status and the waiting jobs are read from the registry at scrape time (``render``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.outbox import outbox_stats
from adapters.registry.stats import registry_stats
from domain.ports import Job, StepObserver, UnitOfWorkFactory
from domain.tenant import JobKind, TenantStatus

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # text/plain; version=0.0.4; charset=utf-8
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        # Not LimitExceededException: that is a quota (domain.errors.QUOTA_CODES), failed at once.
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# botocore event names carry the hyphenated service id, not the client's service name.
_SERVICE_IDS = {
    "cognito-identity-provider": "cognito-idp",
    "cognito-identity": "cognito-identity",
    "iam": "iam",
    "sts": "sts",
    "secrets-manager": "secretsmanager",
    "eventbridge": "events",
}
_RUN_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# What a finished run's final status means, per job kind.
_RUN_OUTCOMES = {
    JobKind.PROVISION: {TenantStatus.ACTIVE: "active", TenantStatus.FAILED: "failed"},
    JobKind.DEPROVISION: {TenantStatus.DELETED: "deleted", TenantStatus.DEPROVISIONING: "failed"},
}

Handler = Callable[[str, Job], Awaitable[object]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.onboarding = Histogram(
            "tenants_onboarding_duration_seconds",
            "Provisioning runs, from start to active or failed, by tier and outcome (active|failed).",
            ["tier", "outcome"],
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.teardown = Histogram(
            "tenants_teardown_duration_seconds",
            "Teardown runs, from start to deleted or failed, by tier and outcome (deleted|failed).",
            ["tier", "outcome"],
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.steps = Histogram(
            "tenants_step_duration_seconds",
            "Plan steps by operation (provision|deprovision), step and outcome.",
            ["operation", "step", "outcome"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.aws_calls = Counter(
            "tenants_aws_calls",
            "AWS calls by service, operation and outcome: ok and failed count calls by their final "
            "answer; throttled counts attempts answered with a throttling error; retried counts retry attempts.",
            ["service", "operation", "outcome"],
            registry=r,
        )
        self.by_status = Gauge("tenants_by_status", "Tenants in the registry by status.", ["status"], registry=r)
        self.jobs_waiting = Gauge("tenants_jobs_waiting", "Jobs enqueued and not yet claimed by a worker.", registry=r)
        self.oldest_job_age = Gauge(
            "tenants_oldest_job_age_seconds", "Age of the oldest job still waiting (0 when none waits).", registry=r
        )
        self.registry_up = Gauge(
            "tenants_registry_up", "1 when the registry answered the scrape's queries, else 0.", registry=r
        )
        # Lifecycle events (service/events.py), by destination kind (eventbridge|webhook).
        self.events_delivered = Counter(
            "tenants_events_delivered", "Lifecycle event deliveries that landed, by destination kind.",
            ["destination_kind"], registry=r,
        )
        self.events_failed = Counter(
            "tenants_events_failed",
            "Failed lifecycle event deliveries by destination kind and outcome: retry (due again after a "
            "backoff) or dead (given up: permanent failure or attempts used up).",
            ["destination_kind", "outcome"], registry=r,
        )
        self.events_pending = Gauge(
            "tenants_events_pending", "Outbox deliveries not yet made (one per event and destination).", registry=r
        )
        self.events_oldest_pending_age = Gauge(
            "tenants_events_oldest_pending_age_seconds",
            "Age of the oldest outbox delivery not yet made (0 when none waits).", registry=r,
        )
        self.events_dead = Gauge(
            "tenants_events_dead", "Outbox deliveries given up on (`tenantctl events retry` sends them again).",
            registry=r,
        )

    # --- worker runs -------------------------------------------------------------------------

    def timed_job(self, kind: JobKind, handler: Handler, uow: UnitOfWorkFactory) -> Handler:
        """``handler`` timed: a run that ends in a final status is observed under its tenant's tier."""
        histogram = self.onboarding if kind is JobKind.PROVISION else self.teardown
        outcomes = _RUN_OUTCOMES[kind]

        async def run(tenant_id: str, job: Job) -> object:
            started = time.perf_counter()
            result = await handler(tenant_id, job)
            elapsed = time.perf_counter() - started
            outcome = outcomes.get(result) if isinstance(result, TenantStatus) else None
            if outcome is not None:
                histogram.labels(tier=await _tier(uow, tenant_id), outcome=outcome).observe(elapsed)
            return result

        return run

    # --- AWS calls ---------------------------------------------------------------------------

    def aws_hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        calls = self.aws_calls

        def needs_retry(response: Any = None, operation: Any = None, attempts: int = 1, **_: Any) -> None:
            # Emitted after every attempt, before botocore decides whether to retry it.
            if operation is None:
                return
            service, name = operation.service_model.service_name, operation.name
            if attempts > 1:
                calls.labels(service, name, "retried").inc()
            if response is not None and _error_code(response[1]) in THROTTLING_CODES:
                calls.labels(service, name, "throttled").inc()

        def after_call(http_response: Any = None, model: Any = None, **_: Any) -> None:
            # Emitted once per call, with the final answer (after any retries).
            if model is None or http_response is None:
                return
            outcome = "ok" if http_response.status_code < 300 else "failed"
            calls.labels(model.service_model.service_name, model.name, outcome).inc()

        def after_call_error(event_name: str = "", **_: Any) -> None:
            # The call raised (connection error, timeout) after its retries.
            _, service_id, name = (event_name.split(".", 2) + ["", ""])[:3]
            calls.labels(_SERVICE_IDS.get(service_id, service_id), name, "failed").inc()

        return [("needs-retry", needs_retry), ("after-call", after_call), ("after-call-error", after_call_error)]

    # --- scrape ------------------------------------------------------------------------------

    async def render(self, engine: AsyncEngine, now: datetime) -> bytes:
        """Refresh the registry gauges, then the exposition text. A registry that does not answer
        leaves the gauges as they were and sets ``tenants_registry_up`` to 0."""
        try:
            stats = await registry_stats(engine)
        except Exception:
            self.registry_up.set(0)
        else:
            self.registry_up.set(1)
            for status in TenantStatus:
                self.by_status.labels(status.value).set(stats.tenants_by_status.get(status.value, 0))
            self.jobs_waiting.set(stats.jobs_waiting)
            oldest = stats.oldest_waiting_job_created_at
            self.oldest_job_age.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
            try:
                events = await outbox_stats(engine)
            except Exception:
                self.registry_up.set(0)
            else:
                self.events_pending.set(events.pending)
                self.events_dead.set(events.dead)
                first = events.oldest_pending_created_at
                age = max(0.0, (now - first).total_seconds()) if first is not None else 0.0
                self.events_oldest_pending_age.set(age)
        return generate_latest(self.registry)


class MetricsStepObserver:
    """StepObserver that times each step into the metrics, then tells ``inner``."""

    def __init__(self, inner: StepObserver, metrics: Metrics) -> None:
        self._inner = inner
        self._steps = metrics.steps

    def step_finished(
        self, *, tenant_id: str, operation: str, step: str, duration_s: float, outcome: str, error_code: str | None
    ) -> None:
        self._steps.labels(operation, step, outcome).observe(duration_s)
        self._inner.step_finished(
            tenant_id=tenant_id,
            operation=operation,
            step=step,
            duration_s=duration_s,
            outcome=outcome,
            error_code=error_code,
        )


def _error_code(parsed: Any) -> str | None:
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("Error")
    return error.get("Code") if isinstance(error, dict) else None


async def _tier(uow: UnitOfWorkFactory, tenant_id: str) -> str:
    try:
        async with uow() as u:
            tenant = await u.tenants.get(tenant_id)
    except Exception:
        return "unknown"
    return tenant.spec.tier if tenant is not None else "unknown"
