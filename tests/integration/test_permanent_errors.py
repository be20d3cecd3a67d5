"""Permanent AWS errors (quotas, invalid parameters) end in `failed` with AWS's code, the step and
a message a person can act on; nothing is retried blindly, and DELETE removes what was created.

The errors are injected by the emulator's targeted faults (`/_emulator/faults`), exactly as AWS
shapes them (Cognito: LimitExceededException / InvalidParameterException; IAM: LimitExceeded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.aws.emulator import clear_faults, fault_stats, set_faults
from adapters.registry.migrate import upgrade
from tests.helpers import API_KEY, identity_pools_named, pools_named, roles_with_prefix, unique_id
from tests.integration.test_api import PREFIX, make_app

WAIT = {"Prefer": "wait=30"}


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("permanent")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url)) as c:
        c.headers.update({"Authorization": f"Bearer {API_KEY}"})
        yield c
    clear_faults(emulator_endpoint)


@pytest.mark.parametrize(
    ("operation", "error", "status", "step", "words", "recorded"),
    [
        ("CreateIdentityPool", "LimitExceededException", 400, "identity_pool", "identity pools per account", ["user_pool_id", "app_client_id"]),
        ("CreateRole", "LimitExceeded", 409, "auth_role", "IAM roles per account", ["user_pool_id", "identity_pool_id"]),
        ("CreateUserPoolClient", "InvalidParameterException", 400, "app_client", "rejected a parameter", ["user_pool_id"]),
    ],
)
async def test_permanent_error_fails_clearly_and_delete_cleans_up(
    client: Any,
    emulator_endpoint: str,
    operation: str,
    error: str,
    status: int,
    step: str,
    words: str,
    recorded: list[str],
) -> None:
    tenant_id = unique_id("perm")
    before = fault_stats(emulator_endpoint)["stats"]["by_operation"].get(_key(operation), {}).get("calls", 0)
    set_faults(emulator_endpoint, operation=operation, error=error, message="quota or parameter problem", status=status, count=1)

    response = await client.post(
        "/v1/tenants", json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Perm"}, headers=WAIT
    )
    assert response.status_code == 201, response.text
    tenant = response.json()
    assert tenant["status"] == "failed", tenant
    # A quota error is `quota_exceeded` (AWS's code is in the message); others keep AWS's code.
    assert tenant["last_error"]["code"] == ("quota_exceeded" if "Limit" in error else error)
    assert error in tenant["last_error"]["message"]
    assert tenant["last_error"]["step"] == step
    assert words in tenant["last_error"]["message"] and "AWS said: quota or parameter problem" in tenant["last_error"]["message"]
    for key in recorded:
        assert tenant["resources"][key], key
    after = fault_stats(emulator_endpoint)["stats"]["by_operation"][_key(operation)]["calls"]
    assert after - before == 1, "a permanent error must not be retried"

    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers=WAIT)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert roles_with_prefix(emulator_endpoint, f"{PREFIX}-{tenant_id}-") == []


def _key(operation: str) -> str:
    service = {"CreateIdentityPool": "cognito-identity", "CreateRole": "iam"}.get(operation, "cognito-idp")
    return f"{service}:{operation}"
