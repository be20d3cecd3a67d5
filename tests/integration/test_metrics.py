"""GET /metrics: the Prometheus exposition after a real onboarding and teardown (in-process app,
SQLite, the shared emulator), with one throttled AWS call injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.aws.emulator import clear_faults, set_faults
from adapters.registry.migrate import upgrade
from service.metrics import Metrics
from tests.helpers import API_KEY, unique_id
from tests.integration.test_api import make_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def client(tmp_path: Path, emulator_endpoint: str) -> AsyncIterator[Any]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp_path, emulator_endpoint, url)) as c:
        yield c


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(parsed: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(v for n, ls, v in parsed if n == name and labels.items() <= ls.items())


async def onboard_with_fault(client: Any, emulator_endpoint: str, tenant_id: str, error: str) -> Any:
    """POST a basic tenant (Prefer: wait) while its next CreateGroup (the groups step) fails once
    with ``error``."""
    set_faults(emulator_endpoint, operation="CreateGroup", error=error, count=1)
    try:
        return await client.post(
            "/v1/tenants",
            json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Metrics"},
            headers={**AUTH, "Prefer": "wait=60"},
        )
    finally:
        clear_faults(emulator_endpoint)


async def test_metrics_after_onboarding_and_teardown(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("met")
    # The throttled CreateGroup is retried (make_app: aws_max_attempts=2).
    created = await onboard_with_fault(client, emulator_endpoint, tenant_id, "TooManyRequestsException")
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers={**AUTH, "Prefer": "wait=60"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"

    response = await client.get("/metrics")  # no key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    parsed = samples(response.text)

    onboarding = "tenants_onboarding_duration_seconds_count"
    assert value(parsed, onboarding, tier="basic", outcome="active") >= 1
    assert value(parsed, "tenants_teardown_duration_seconds_count", tier="basic", outcome="deleted") >= 1
    steps = "tenants_step_duration_seconds_count"
    assert value(parsed, steps, operation="provision", step="user_pool", outcome="ok") >= 1
    assert any(n == steps and ls.get("operation") == "deprovision" for n, ls, _ in parsed)

    calls = "tenants_aws_calls_total"
    assert value(parsed, calls, service="cognito-idp", operation="CreateUserPool", outcome="ok") >= 1
    assert value(parsed, calls, service="cognito-idp", operation="CreateGroup", outcome="throttled") >= 1
    assert value(parsed, calls, service="cognito-idp", operation="CreateGroup", outcome="retried") >= 1

    assert value(parsed, "tenants_by_status", status="deleted") >= 1
    assert any(n == "tenants_jobs_waiting" for n, _, _ in parsed)
    assert any(n == "tenants_oldest_job_age_seconds" for n, _, _ in parsed)
    assert value(parsed, "tenants_registry_up") == 1


async def test_metrics_need_no_key_and_stay_off_the_v1_auth(client: Any) -> None:
    response = await client.get("/metrics", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert "tenants_by_status" in response.text


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # would raise "Duplicated timeseries" on a shared registry
    first.aws_calls.labels("sts", "GetCallerIdentity", "ok").inc()
    assert second.registry.get_sample_value(
        "tenants_aws_calls_total", {"service": "sts", "operation": "GetCallerIdentity", "outcome": "ok"}
    ) is None


async def test_a_quota_error_is_counted_as_failed_not_throttled(client: Any, emulator_endpoint: str) -> None:
    """A quota is not a throttle (issue 12, item 4): the call fails once and is never retried, so
    /metrics must not report it as throttled (alerts on throttling would fire for a full account)."""
    created = await onboard_with_fault(client, emulator_endpoint, unique_id("metq"), "LimitExceededException")
    assert created.json()["status"] == "failed", created.text
    assert created.json()["last_error"]["code"] == "quota_exceeded"
    parsed = samples((await client.get("/metrics")).text)
    calls = "tenants_aws_calls_total"
    assert value(parsed, calls, service="cognito-idp", operation="CreateGroup", outcome="throttled") == 0
    assert value(parsed, calls, service="cognito-idp", operation="CreateGroup", outcome="retried") == 0
    assert value(parsed, calls, service="cognito-idp", operation="CreateGroup", outcome="failed") == 1
