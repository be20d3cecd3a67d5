"""The HTTP API in-process (Litestar's test client), on SQLite and PostgreSQL, against the emulator over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.app import create_app
from tests.helpers import API_KEY, boto, identity_pools_named, pools_named, roles_with_prefix, unique_id, wait_status
from tests.integration.conftest import BACKENDS
from tests.integration.databases import throwaway_database

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PREFIX = "apit"


def make_app(tmp: Path, endpoint: str, database_url: str, **overrides: Any) -> Any:
    return create_app(
        database_url=database_url,
        aws_endpoint_url=endpoint,
        aws_strict_params=True,
        aws_max_attempts=2,
        bootstrap_api_key=API_KEY,
        resource_prefix=PREFIX,
        poll_interval_s=0.05,
        var_dir=tmp,
        # These tests poll and fire concurrent requests with one key; tests/integration/test_limits.py
        # covers the limits themselves.
        **{"rate_limit_per_s": 10_000.0, "rate_limit_burst": 10_000, **overrides},
    )


@pytest.fixture(scope="module", params=BACKENDS)
def postgres_for_api(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server to make the API's registry on, or None for SQLite."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server_url")


@pytest.fixture(scope="module")
async def client(
    postgres_for_api: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("api")
    async with contextlib.AsyncExitStack() as stack:
        if postgres_for_api is None:
            url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres_for_api))
        await upgrade(url)
        async with AsyncTestClient(make_app(tmp, emulator_endpoint, url)) as c:
            c.headers.update(AUTH)
            yield c


def body(tenant_id: str, tier: str = "basic", **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "tier": tier, "display_name": f"Tenant {tenant_id}", **extra}


async def test_every_v1_route_needs_a_key(client: Any) -> None:
    routes = [
        ("GET", "/v1/tenants"),
        ("POST", "/v1/tenants"),
        ("GET", "/v1/tenants/acme"),
        ("DELETE", "/v1/tenants/acme"),
        ("POST", "/v1/tenants/acme/retry"),
        ("GET", "/v1/tiers"),
    ]
    for method, path in routes:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic abc"}):
            response = await client.request(method, path, headers=headers, json=body("acme"))
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert API_KEY not in response.text
    assert (await client.get("/health/live", headers={"Authorization": ""})).status_code == 200


async def test_onboard_read_and_tear_down(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("acme")
    response = await client.post("/v1/tenants", json=body(tenant_id, "standard", admin_email="boss@example.com"))
    assert response.status_code == 202
    assert response.headers["location"] == f"/v1/tenants/{tenant_id}"
    assert response.json()["status"] == "provisioning"
    assert response.headers["x-request-id"]

    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert tenant["status"] == "active", tenant
    res = tenant["resources"]
    assert res["account_id"] == "123456789012" and res["region"] == "us-east-1"
    for key in ("user_pool_id", "user_pool_arn", "app_client_id", "identity_pool_id", "authenticated_role_arn", "issuer_url"):
        assert res[key], key
    assert res["unauthenticated_role_arn"] is None  # standard allows no guests
    assert res["issuer_url"] == f"https://cognito-idp.us-east-1.amazonaws.com/{res['user_pool_id']}"

    idp = boto("cognito-idp", emulator_endpoint)
    pool = idp.describe_user_pool(UserPoolId=res["user_pool_id"])["UserPool"]
    assert pool["DeletionProtection"] == "ACTIVE"
    assert pool["UserPoolTags"]["tenants:tenant-id"] == tenant_id
    assert {g["GroupName"] for g in idp.list_groups(UserPoolId=res["user_pool_id"])["Groups"]} == {"admins", "editors", "users"}
    admins = idp.list_users_in_group(UserPoolId=res["user_pool_id"], GroupName="admins")["Users"]
    assert len(admins) == 1
    client_desc = idp.describe_user_pool_client(UserPoolId=res["user_pool_id"], ClientId=res["app_client_id"])["UserPoolClient"]
    assert {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(client_desc["ExplicitAuthFlows"])
    identity = boto("cognito-identity", emulator_endpoint)
    roles = identity.get_identity_pool_roles(IdentityPoolId=res["identity_pool_id"])
    assert roles["Roles"] == {"authenticated": res["authenticated_role_arn"]}
    ipool = identity.describe_identity_pool(IdentityPoolId=res["identity_pool_id"])
    assert ipool["AllowUnauthenticatedIdentities"] is False
    assert ipool["CognitoIdentityProviders"] == [
        {
            "ProviderName": f"cognito-idp.us-east-1.amazonaws.com/{res['user_pool_id']}",
            "ClientId": res["app_client_id"],
            "ServerSideTokenCheck": True,
        }
    ]
    assert ipool["IdentityPoolTags"]["tenants:tenant-id"] == tenant_id
    role = boto("iam", emulator_endpoint).get_role(RoleName=f"{PREFIX}-{tenant_id}-auth")["Role"]
    condition = role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"cognito-identity.amazonaws.com:aud": res["identity_pool_id"]}
    assert condition["ForAnyValue:StringLike"] == {"cognito-identity.amazonaws.com:amr": "authenticated"}
    assert role["Path"] == "/tenants/"

    # Same spec again: 200 with the tenant as it is. Different spec: 409 naming the state.
    again = await client.post("/v1/tenants", json=body(tenant_id, "standard", admin_email="boss@example.com"))
    assert again.status_code == 200 and again.json()["status"] == "active"
    conflict = await client.post("/v1/tenants", json=body(tenant_id, "premium"))
    assert conflict.status_code == 409
    assert conflict.json()["tenant_status"] == "active"

    gone = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "deleted"
    assert all(v is None for k, v in gone.json()["resources"].items() if k not in ("account_id", "region"))
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert roles_with_prefix(emulator_endpoint, f"{PREFIX}-{tenant_id}-") == []

    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 200
    tombstone = await client.get(f"/v1/tenants/{tenant_id}")
    assert tombstone.status_code == 200 and tombstone.json()["status"] == "deleted"
    reuse = await client.post("/v1/tenants", json=body(tenant_id, "standard", admin_email="boss@example.com"))
    assert reuse.status_code == 409


async def test_prefer_wait_answers_201_with_premium_resources(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("prem")
    response = await client.post("/v1/tenants", json=body(tenant_id, "premium"), headers={"Prefer": "wait=30"})
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "wait=30"
    tenant = response.json()
    assert tenant["status"] == "active", tenant
    res = tenant["resources"]
    assert res["unauthenticated_role_arn"] and res["hosted_ui_domain"].startswith(f"{PREFIX}-{tenant_id}.auth.")
    roles = boto("cognito-identity", emulator_endpoint).get_identity_pool_roles(IdentityPoolId=res["identity_pool_id"])
    assert set(roles["Roles"]) == {"authenticated", "unauthenticated"}
    mfa = boto("cognito-idp", emulator_endpoint).get_user_pool_mfa_config(UserPoolId=res["user_pool_id"])
    assert mfa["MfaConfiguration"] == "ON" and mfa["SoftwareTokenMfaConfiguration"]["Enabled"] is True
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert deleted.json()["status"] == "deleted", deleted.text
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tenant_id": "Bad_Id", "tier": "basic", "display_name": "x"}, "tenant_id"),
        ({"tenant_id": "ab", "tier": "basic", "display_name": "x"}, "tenant_id"),
        ({"tenant_id": "{id}", "tier": "gold", "display_name": "x"}, "tier"),
        ({"tenant_id": "{id}", "tier": "basic"}, "display_name"),
        ({"tenant_id": "{id}", "tier": "basic", "display_name": "x", "colour": "red"}, "colour"),
        ({"tenant_id": "{id}", "tier": "basic", "display_name": "x", "admin_email": "not-an-email"}, "admin_email"),
        ({"tenant_id": "{id}", "tier": "basic", "display_name": ""}, "display_name"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_creates_nothing(
    client: Any, emulator_endpoint: str, payload: dict[str, Any], field: str
) -> None:
    tenant_id = unique_id("bad")
    payload = {k: (v.replace("{id}", tenant_id) if isinstance(v, str) else v) for k, v in payload.items()}
    response = await client.post("/v1/tenants", json=payload)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert field in problem["detail"]
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []


async def test_malformed_json_and_oversized_body(client: Any) -> None:
    response = await client.post("/v1/tenants", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    big = body(unique_id("big"), display_name="x" * 100) | {"padding": "x" * 100_000}
    response = await client.post("/v1/tenants", json=big)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_list_is_keyset_paginated_and_filtered(client: Any) -> None:
    marker = unique_id("page")
    ids = sorted(f"{marker}-{i:02d}" for i in range(7))
    for tenant_id in ids:
        assert (await client.post("/v1/tenants", json=body(tenant_id))).status_code == 202
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "tier": "basic"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/tenants", params=params)).json()
        seen += [t["tenant_id"] for t in page["items"] if t["tenant_id"].startswith(marker)]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert (await client.get("/v1/tenants", params={"limit": 500})).status_code == 422
    bad_cursor = await client.get("/v1/tenants", params={"cursor": "!!!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "cursor"
    bad_status = await client.get("/v1/tenants", params={"status": "sleeping"})
    assert bad_status.status_code == 422 and bad_status.json()["errors"][0]["field"] == "status"
    for tenant_id in ids:
        await wait_status(client, tenant_id, {"active", "failed"})
        assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 202


async def test_unknown_tenant_and_retry_rules(client: Any) -> None:
    assert (await client.get("/v1/tenants/no-such-tenant")).status_code == 404
    assert (await client.delete("/v1/tenants/no-such-tenant")).status_code == 404
    assert (await client.post("/v1/tenants/no-such-tenant/retry")).status_code == 404
    tenant_id = unique_id("retry")
    await client.post("/v1/tenants", json=body(tenant_id), headers={"Prefer": "wait=30"})
    response = await client.post(f"/v1/tenants/{tenant_id}/retry")
    assert response.status_code == 409
    assert response.json()["tenant_status"] == "active"
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_aws_failure_leaves_failed_with_resources_and_retry_resumes(client: Any, emulator_endpoint: str) -> None:
    """A role with the tenant's name but not ours blocks provisioning at auth_role; once it is
    gone, retry resumes from the recorded steps without duplicating the user pool."""
    tenant_id = unique_id("fail")
    iam = boto("iam", emulator_endpoint)
    role_name = f"{PREFIX}-{tenant_id}-auth"
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')

    await client.post("/v1/tenants", json=body(tenant_id))
    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert tenant["status"] == "failed"
    assert tenant["last_error"]["code"] == "ResourceNotOwned"
    assert tenant["last_error"]["step"] == "auth_role"
    assert tenant["resources"]["user_pool_id"] and tenant["resources"]["identity_pool_id"]
    assert tenant["resources"]["authenticated_role_arn"] is None
    assert iam.get_role(RoleName=role_name)["Role"]["RoleName"] == role_name  # the foreign role is untouched

    iam.delete_role(RoleName=role_name)
    retry = await client.post(f"/v1/tenants/{tenant_id}/retry")
    assert retry.status_code == 202 and retry.json()["status"] == "provisioning"
    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert tenant["status"] == "active", tenant
    assert tenant["last_error"] is None
    assert len(pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}")) == 1
    assert len(identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}")) == 1
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []


async def test_tiers_are_listed(client: Any) -> None:
    tiers = (await client.get("/v1/tiers")).json()
    names = [t["name"] for t in tiers]
    assert names == ["basic", "premium", "standard"]
    premium = next(t for t in tiers if t["name"] == "premium")
    assert premium["settings"]["mfa"] == "ON" and premium["settings"]["hosted_ui_domain"] is True
