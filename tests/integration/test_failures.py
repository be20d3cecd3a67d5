"""An AWS rejection mid-provisioning: the tenant ends `failed` with AWS's own error code and the
step that failed, every resource created so far is recorded (and really exists), retry fails the
same way (templates are fixed at start-up), and DELETE still removes everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from tests.helpers import API_KEY, boto, identity_pools_named, pools_named, roles_with_prefix, unique_id, wait_status
from tests.integration.test_api import PREFIX, make_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}
WAIT = {"Prefer": "wait=30"}
AWS_CODE = "MalformedPolicyDocument"

# One tier whose role policy passes the template checks (placeholders, tenant-scoped ARNs) but
# that IAM rejects at PutRolePolicy: an action without its service prefix. Real IAM and moto both
# answer MalformedPolicyDocument ("Actions/Conditions must be prefaced by a vendor, e.g., iam,
# sdb, ec2, etc.").
BROKEN_TIERS = """
[tiers.broken]
description = "A role policy IAM rejects"
mfa = "OFF"

[[tiers.broken.authenticated_policy]]
Sid = "NoVendor"
Effect = "Allow"
Action = ["GetObject"]
Resource = ["arn:{{partition}}:s3:::data/{{tenant_id}}/*"]
"""


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("failures")
    tiers = tmp / "tiers.toml"
    tiers.write_text(BROKEN_TIERS)
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url, tiers_file=tiers)) as c:
        c.headers.update(AUTH)
        yield c


def assert_failed_at_policy(tenant: dict[str, Any]) -> None:
    assert tenant["status"] == "failed", tenant
    error = tenant["last_error"]
    assert error["code"] == AWS_CODE, error
    assert error["step"] == "auth_role_policy", error
    assert error["message"], error
    res = tenant["resources"]
    for key in ("user_pool_id", "user_pool_arn", "app_client_id", "identity_pool_id", "authenticated_role_arn"):
        assert res[key], (key, res)


def assert_resources_exist(endpoint: str, tenant_id: str, res: dict[str, Any]) -> None:
    idp = boto("cognito-idp", endpoint)
    pool = idp.describe_user_pool(UserPoolId=res["user_pool_id"])["UserPool"]
    assert pool["Name"] == f"{PREFIX}-{tenant_id}"
    assert pool["Arn"] == res["user_pool_arn"]
    app_client = idp.describe_user_pool_client(UserPoolId=res["user_pool_id"], ClientId=res["app_client_id"])
    assert app_client["UserPoolClient"]["ClientId"] == res["app_client_id"]
    identity = boto("cognito-identity", endpoint).describe_identity_pool(IdentityPoolId=res["identity_pool_id"])
    assert identity["IdentityPoolName"] == f"{PREFIX}-{tenant_id}"
    iam = boto("iam", endpoint)
    role_name = res["authenticated_role_arn"].rsplit("/", 1)[1]
    assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == res["authenticated_role_arn"]
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []  # the rejected policy is not there
    # Exactly one of each: nothing was created twice.
    assert len(pools_named(endpoint, f"{PREFIX}-{tenant_id}")) == 1
    assert len(identity_pools_named(endpoint, f"{PREFIX}-{tenant_id}")) == 1


async def test_aws_error_code_is_kept_and_everything_is_torn_down(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("broken")
    body = {"tenant_id": tenant_id, "tier": "broken", "display_name": "Broken Co"}

    response = await client.post("/v1/tenants", json=body, headers=WAIT)
    assert response.status_code == 201, response.text
    tenant = response.json()
    assert_failed_at_policy(tenant)
    res = tenant["resources"]
    assert res["unauthenticated_role_arn"] is None  # the tier has no guests
    assert_resources_exist(emulator_endpoint, tenant_id, res)
    # GET shows the same.
    assert (await client.get(f"/v1/tenants/{tenant_id}")).json()["last_error"] == tenant["last_error"]

    # Retry resumes from the recorded steps and fails the same way: the templates are fixed at start-up.
    retry = await client.post(f"/v1/tenants/{tenant_id}/retry")
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "provisioning"
    again = await wait_status(client, tenant_id, {"active", "failed"})
    assert_failed_at_policy(again)
    assert {k: again["resources"][k] for k in res} == res  # the same resources, adopted not recreated
    assert_resources_exist(emulator_endpoint, tenant_id, res)

    gone = await client.delete(f"/v1/tenants/{tenant_id}", headers=WAIT)
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "deleted", gone.text
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert roles_with_prefix(emulator_endpoint, f"{PREFIX}-{tenant_id}-") == []
    with pytest.raises(ClientError) as missing:
        boto("cognito-idp", emulator_endpoint).describe_user_pool(UserPoolId=res["user_pool_id"])
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
