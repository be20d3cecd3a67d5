"""How many times one logical AWS call reaches AWS (issue 12): counted by the emulator's fault
layer (`/_emulator/faults`), through every retry layer (botocore, the step runner, the worker).

- A quota error (Cognito `LimitExceededException`, IAM `LimitExceeded`, `ServiceQuotaExceededException`)
  is sent once, never retried, and fails the tenant with `quota_exceeded`.
- A throttle is retried by one layer, with the budget TENANTS_AWS_MAX_ATTEMPTS (here 3): botocore
  for every call, the step (adopt-first) for a create sent once. Throttled k times then answered:
  k+1 calls; throttled forever: exactly the budget, and the tenant fails with the throttle's code.

The emulator is this module's own, so its counters see only these tests' calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.aws.clients import AwsClients
from adapters.aws.emulator import EmulatorServer, clear_faults, fault_stats, set_faults
from adapters.aws.errors import aws_call
from adapters.registry.migrate import upgrade
from domain.errors import CloudError, QuotaExceeded
from service.app import create_app
from tests.helpers import API_KEY, identity_pools_named, unique_id

BUDGET = 3  # TENANTS_AWS_MAX_ATTEMPTS in these tests
PREFIX = "rbud"
WAIT = {"Prefer": "wait=60"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorServer(port=0) as server:
        yield server.endpoint_url


@pytest.fixture(autouse=True)
def no_faults_left(endpoint: str) -> Iterator[None]:
    yield
    clear_faults(endpoint)


def calls(endpoint: str, key: str) -> int:
    return int(fault_stats(endpoint)["stats"]["by_operation"].get(key, {}).get("calls", 0))


# --- one client call ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def aws(endpoint: str) -> AsyncIterator[AwsClients]:
    async with AwsClients(
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=BUDGET,
        retry_mode="standard",
    ) as clients:
        yield clients


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
@pytest.mark.parametrize(
    ("service", "operation", "error", "status", "params"),
    [
        ("cognito-idp", "ListUserPools", "LimitExceededException", 400, {"MaxResults": 1}),
        ("cognito-identity", "ListIdentityPools", "LimitExceededException", 400, {"MaxResults": 1}),
        ("iam", "ListRoles", "LimitExceeded", 409, {"MaxItems": 1}),
        ("cognito-idp", "ListUserPools", "ServiceQuotaExceededException", 402, {"MaxResults": 1}),
    ],
)
async def test_a_quota_error_is_sent_once_and_comes_out_as_quota_exceeded(
    endpoint: str, mode: str, service: str, operation: str, error: str, status: int, params: dict[str, Any]
) -> None:
    key = f"{service}:{operation}"
    set_faults(endpoint, operation=operation, error=error, status=status, message="quota words", count=None)
    before = calls(endpoint, key)
    async with AwsClients(
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=BUDGET,
        retry_mode=mode,  # type: ignore[arg-type]
    ) as clients:
        with pytest.raises(QuotaExceeded) as excinfo:
            await aws_call(clients.client(service), operation, **params)
    assert calls(endpoint, key) - before == 1
    quota = excinfo.value
    assert (quota.code, quota.aws_code, quota.operation, quota.retryable) == ("quota_exceeded", error, operation, False)
    assert quota.message == "quota words"


@pytest.mark.parametrize(
    ("service", "operation", "error", "params"),
    [
        ("cognito-idp", "ListUserPools", "TooManyRequestsException", {"MaxResults": 1}),
        ("iam", "ListRoles", "Throttling", {"MaxItems": 1}),
        ("cognito-identity", "ListIdentityPools", "ConcurrentModificationException", {"MaxResults": 1}),
    ],
)
async def test_a_throttle_is_retried_within_the_budget(
    endpoint: str, aws: AwsClients, service: str, operation: str, error: str, params: dict[str, Any]
) -> None:
    key = f"{service}:{operation}"
    before = calls(endpoint, key)
    set_faults(endpoint, operation=operation, error=error, count=BUDGET - 1)
    await aws_call(aws.client(service), operation, **params)
    assert calls(endpoint, key) - before == BUDGET  # k = BUDGET - 1 throttles, then the answer

    set_faults(endpoint, operation=operation, error=error, count=None)
    with pytest.raises(CloudError) as excinfo:
        await aws_call(aws.client(service), operation, **params)
    assert calls(endpoint, key) - before == 2 * BUDGET
    assert excinfo.value.code == error and excinfo.value.retryable and excinfo.value.attempts == BUDGET


# --- one provisioning step, through the service ---------------------------------------------


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> AsyncIterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("retry-budget")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    app = create_app(
        database_url=url,
        aws_endpoint_url=endpoint,
        aws_max_attempts=BUDGET,
        bootstrap_api_key=API_KEY,
        resource_prefix=PREFIX,
        poll_interval_s=0.05,
        var_dir=tmp,
        rate_limit_per_s=10_000.0,
        rate_limit_burst=10_000,
    )
    async with AsyncTestClient(app) as client:
        client.headers.update({"Authorization": f"Bearer {API_KEY}"})
        yield client


async def onboard(api: Any) -> dict[str, Any]:
    tenant_id = unique_id("rb")
    response = await api.post(
        "/v1/tenants", json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Budget"}, headers=WAIT
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


# CreateGroup goes through the retrying client (groups are unique by name: a retry is safe);
# CreateIdentityPool is sent once (AWS cannot deduplicate it) and retried by its step.
STEPS = [
    ("cognito-idp", "CreateGroup", "groups"),
    ("cognito-identity", "CreateIdentityPool", "identity_pool"),
]
# The same operation's other calls in a basic onboarding: its second group.
OTHERS = {"CreateGroup": 1, "CreateIdentityPool": 0}


@pytest.mark.parametrize(("service", "operation", "step"), STEPS)
async def test_a_quota_exhausted_step_makes_one_call_and_fails_with_quota_exceeded(
    api: Any, endpoint: str, service: str, operation: str, step: str
) -> None:
    key = f"{service}:{operation}"
    before = calls(endpoint, key)
    set_faults(
        endpoint,
        operation=operation,
        error="LimitExceededException",
        message="The maximum number of things has been reached",
        count=None,
    )
    tenant = await onboard(api)
    assert calls(endpoint, key) - before == 1
    assert tenant["status"] == "failed", tenant
    error = tenant["last_error"]
    assert (error["code"], error["step"]) == ("quota_exceeded", step)
    assert "LimitExceededException" in error["message"]
    assert "AWS said: The maximum number of things has been reached" in error["message"]
    named = {"CreateGroup": "groups per user pool", "CreateIdentityPool": "identity pools per account and Region"}
    assert named[operation] in error["message"]


@pytest.mark.parametrize(("service", "operation", "step"), STEPS)
async def test_a_step_throttled_k_times_then_answered_makes_k_plus_one_calls(
    api: Any, endpoint: str, service: str, operation: str, step: str
) -> None:
    key = f"{service}:{operation}"
    before = calls(endpoint, key)
    k = BUDGET - 1
    set_faults(endpoint, operation=operation, error="TooManyRequestsException", message="Rate exceeded", count=k)
    tenant = await onboard(api)
    assert tenant["status"] == "active", tenant
    assert calls(endpoint, key) - before == k + 1 + OTHERS[operation]
    assert len(identity_pools_named(endpoint, f"{PREFIX}-{tenant['tenant_id']}")) == 1


@pytest.mark.parametrize(("service", "operation", "step"), STEPS)
async def test_a_step_throttled_forever_makes_exactly_the_budget_of_calls(
    api: Any, endpoint: str, service: str, operation: str, step: str
) -> None:
    key = f"{service}:{operation}"
    before = calls(endpoint, key)
    set_faults(endpoint, operation=operation, error="TooManyRequestsException", message="Rate exceeded", count=None)
    tenant = await onboard(api)
    assert calls(endpoint, key) - before == BUDGET
    assert tenant["status"] == "failed", tenant
    assert (tenant["last_error"]["code"], tenant["last_error"]["step"]) == ("TooManyRequestsException", step)
    assert "throttling" in tenant["last_error"]["message"]


async def test_a_lost_create_response_is_adopted_not_duplicated(api: Any, endpoint: str) -> None:
    key = "cognito-identity:CreateIdentityPool"
    before = calls(endpoint, key)
    set_faults(endpoint, operation="CreateIdentityPool", mode="lost", count=1)
    tenant = await onboard(api)
    assert tenant["status"] == "active", tenant
    assert calls(endpoint, key) - before == 1  # the step's retry found it by name and adopted it
    assert len(identity_pools_named(endpoint, f"{PREFIX}-{tenant['tenant_id']}")) == 1
