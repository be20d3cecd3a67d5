"""The service's own least privilege, enforced and measured.

Enforced: an emulator in a subprocess with moto's INITIAL_NO_AUTH_ACTION_COUNT set lets through
only the first few calls, which create IAM users holding deploy/iam-policy.json (ACCOUNT_ID and
PERMISSIONS_BOUNDARY_ARN filled in) and their access keys; every call after that is authorized
against the caller's policies, on the resources AWS would use (adapters/aws/emulator/
authorization.py), for cognito-idp, cognito-identity, Secrets Manager and IAM alike. A full
premium onboarding and teardown then runs with the service's credentials and must not be denied
anything; with one action taken out of the policy, onboarding must fail with AccessDenied.

Measured: over the shared emulator (no enforcement), a botocore hook records every operation the
adapters send during onboarding, re-binding, teardown and the orphan sweep; the policy must grant
each of them and nothing else (bar the actions AWS checks along with one the adapters call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from litestar.testing import AsyncTestClient

from adapters.aws.emulator import clear_faults, set_faults
from adapters.registry.migrate import upgrade
from domain.naming import ResourceNames, ownership_tags
from service.app import create_app
from service.settings import load_settings
from service.wiring import Container
from tests.helpers import API_KEY, boto, unique_id, wait_status

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/tenant-roles-boundary"
EVENT_BUS = "lpr-lifecycle"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = "owner@example.com"
# The actions taken out of the policy one at a time, the step that needs it and the code AWS
# (and the emulator) answers with: JSON-protocol services say AccessDeniedException, IAM says
# AccessDenied.
WITHOUT = {
    "iam:PassRole": ("identity_pool_roles", "AccessDeniedException"),
    "cognito-idp:CreateGroup": ("groups", "AccessDeniedException"),
    "iam:PutRolePolicy": ("role_policy", "AccessDenied"),
}
USERS = ["full", *WITHOUT]
# Per user: CreateUser, PutUserPolicy, CreateAccessKey. Everything after these is enforced.
FREE_CALLS = 3 * len(USERS)


def service_policy(*, without: str | None = None) -> dict[str, Any]:
    """deploy/iam-policy.json as an operator would attach it, optionally missing one action."""
    text = (ROOT / "deploy" / "iam-policy.json").read_text()
    text = text.replace("EVENT_BUS_NAME", EVENT_BUS)
    policy = json.loads(text.replace("ACCOUNT_ID", ACCOUNT).replace("PERMISSIONS_BOUNDARY_ARN", BOUNDARY))
    statements = []
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        kept = [a for a in actions if a != without]
        if kept:
            statements.append({**statement, "Action": kept})
    assert without is None or len(statements) <= len(policy["Statement"])
    policy["Statement"] = statements
    return policy


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str

    def client(self, service: str, endpoint: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@dataclass(frozen=True)
class EnforcingEmulator:
    endpoint: str
    keys: dict[str, Keys]


@pytest.fixture(scope="module")
def enforcing() -> Iterator[EnforcingEmulator]:
    tenantctl = Path(sys.executable).with_name("tenantctl")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(FREE_CALLS)}
    process = subprocess.Popen(
        [str(tenantctl), "emulator", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "AWS emulator listening on http://127.0.0.1:<port>"
        assert "listening on http://127.0.0.1:" in line, line
        endpoint = line.split()[-1]
        iam = boto("iam", endpoint)
        keys: dict[str, Keys] = {}
        for user in USERS:
            iam.create_user(UserName=f"svc-{user.replace(':', '-')}")
            policy = service_policy(without=None if user == "full" else user)
            iam.put_user_policy(
                UserName=f"svc-{user.replace(':', '-')}", PolicyName="service", PolicyDocument=json.dumps(policy)
            )
            created = iam.create_access_key(UserName=f"svc-{user.replace(':', '-')}")["AccessKey"]
            keys[user] = Keys(created["AccessKeyId"], created["SecretAccessKey"])
        # From here on every call is authorized: even the emulator's default credentials are refused.
        with pytest.raises(ClientError) as refused:
            iam.list_users()
        assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
        yield EnforcingEmulator(endpoint, keys)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def service(tmp: Path, emulator: EnforcingEmulator, user: str) -> AsyncIterator[Any]:
    """The app in-process, holding the named user's credentials (TENANTS_EMULATOR_*)."""
    database = tmp / (user.replace(":", "-") + ".db")
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    keys = emulator.keys[user]
    app = create_app(
        database_url=url,
        aws_endpoint_url=emulator.endpoint,
        emulator_access_key_id=keys.access_key_id,
        emulator_secret_access_key=keys.secret_access_key,
        role_permissions_boundary=BOUNDARY,
        aws_strict_params=True,
        aws_max_attempts=2,
        bootstrap_api_key=API_KEY,
        poll_interval_s=0.05,
        var_dir=tmp,
    )
    async with AsyncTestClient(app) as client:
        client.headers.update(AUTH)
        yield client


async def onboard(client: Any, tenant_id: str, tier: str = "premium", **settings: Any) -> dict[str, Any]:
    body = {"tenant_id": tenant_id, "tier": tier, "display_name": "Least privilege", "admin_email": ADMIN, **settings}
    response = await client.post("/v1/tenants", json=body)
    assert response.status_code == 202, response.text
    return await wait_status(client, tenant_id, {"active", "failed"})


async def tear_down(client: Any, tenant_id: str) -> dict[str, Any]:
    response = await client.delete(f"/v1/tenants/{tenant_id}")
    assert response.status_code in (200, 202), response.text
    return await wait_status(client, tenant_id, {"deleted"})


async def test_a_premium_tenant_onboards_and_tears_down_with_only_the_committed_policy(
    enforcing: EnforcingEmulator, tmp_path: Path
) -> None:
    tenant_id = unique_id("lp")
    names = ResourceNames("tenants", tenant_id)
    as_service = enforcing.keys["full"]
    # With the tenant's own identity provider: its client secret is read back (GetSecretValue,
    # granted on tenants/*/idp/* only) on its way to CreateIdentityProvider.
    oidc = {"type": "OIDC", "issuer": "https://idp.lp.example", "client_id": "lp", "client_secret": "lp-s", "scopes": ["openid"]}
    async with service(tmp_path, enforcing, "full") as client:
        tenant = await onboard(client, tenant_id, identity_providers={"lp-oidc": oidc})
        assert tenant["status"] == "active", tenant["last_error"]
        assert tenant["last_error"] is None
        # The app client's secret, which the service copied from Cognito into Secrets Manager, is
        # not readable with the service's own rights; the provider's secret is.
        sm = as_service.client("secretsmanager", enforcing.endpoint)
        with pytest.raises(ClientError) as denied:
            sm.get_secret_value(SecretId=tenant["resources"]["app_client_secret_arn"])
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert sm.get_secret_value(SecretId=names.identity_provider_secret("lp-oidc"))["SecretString"] == "lp-s"
        # The roles sit inside the permissions boundary (read with the service's own rights).
        iam = as_service.client("iam", enforcing.endpoint)
        for kind in ("auth", "unauth"):
            role = iam.get_role(RoleName=names.role(kind))["Role"]
            assert role["Path"] == "/tenants/"
            assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY

        deleted = await tear_down(client, tenant_id)
        assert deleted["status"] == "deleted" and deleted["last_error"] is None
    # Gone, as the service itself can see: the role lookup is answered NoSuchEntity, not
    # AccessDenied (a role that does not exist is authorized by name), and no pool is left.
    with pytest.raises(ClientError) as gone:
        iam.get_role(RoleName=names.role("auth"))
    assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    pools = as_service.client("cognito-idp", enforcing.endpoint).list_user_pools(MaxResults=60)["UserPools"]
    assert names.user_pool not in {p["Name"] for p in pools}


async def test_the_service_cannot_touch_what_the_policy_does_not_grant(enforcing: EnforcingEmulator) -> None:
    as_service = enforcing.keys["full"]
    iam = as_service.client("iam", enforcing.endpoint)
    with pytest.raises(ClientError) as denied:
        iam.create_role(RoleName="escalate", Path="/", AssumeRolePolicyDocument="{}")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied:
        iam.create_user(UserName="backdoor")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    identity = as_service.client("cognito-identity", enforcing.endpoint)
    with pytest.raises(ClientError) as denied:
        identity.set_identity_pool_roles(
            IdentityPoolId="us-east-1:00000000-0000-0000-0000-000000000000",
            Roles={"authenticated": f"arn:aws:iam::{ACCOUNT}:role/admin/Administrator"},
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "iam:PassRole" in denied.value.response["Error"]["Message"]


@pytest.mark.parametrize("missing", sorted(WITHOUT))
async def test_onboarding_fails_with_access_denied_when_the_policy_lacks_an_action(
    enforcing: EnforcingEmulator, tmp_path: Path, missing: str
) -> None:
    step, code = WITHOUT[missing]
    tenant_id = unique_id("lp")
    async with service(tmp_path, enforcing, missing) as client:
        tenant = await onboard(client, tenant_id, "basic")  # the smallest tier that needs all three
        assert tenant["status"] == "failed"
        error = tenant["last_error"]
        assert error["code"] == code and step in error["step"], error
        assert missing.split(":")[1] in error["message"], error
        # Teardown needs none of these actions: the half-made tenant is cleaned up.
        deleted = await tear_down(client, tenant_id)
        assert deleted["status"] == "deleted" and deleted["last_error"] is None


# -- every operation the adapters send, recorded ---------------------------------------------------


class Recorder:
    """A botocore ``before-call`` hook: "<signing name>:<operation>" of every call."""

    def __init__(self) -> None:
        self.calls: set[str] = set()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.add(f"{model.service_model.signing_name}:{model.name}")


class SecretReads:
    """A botocore ``before-parameter-build`` hook: the SecretId of every GetSecretValue sent."""

    def __init__(self) -> None:
        self.secret_ids: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.service_model.signing_name == "secretsmanager" and model.name in ("GetSecretValue", "BatchGetSecretValue"):
            self.secret_ids.append(str(params.get("SecretId") or params.get("SecretIdList") or params.get("Filters")))


# Actions AWS checks along with an operation the adapters call; the adapters never name them.
IMPLIED = {
    "iam:TagRole": "iam:CreateRole",  # CreateRole with Tags
    "iam:PassRole": "cognito-identity:SetIdentityPoolRoles",
    "cognito-idp:TagResource": "cognito-idp:CreateUserPool",  # with UserPoolTags
    "cognito-identity:TagResource": "cognito-identity:CreateIdentityPool",  # with IdentityPoolTags
    "secretsmanager:TagResource": "secretsmanager:CreateSecret",  # with Tags
}
# Operations that need no permission at all.
UNAUTHORIZED = {"sts:GetCallerIdentity"}


def granted() -> set[str]:
    actions: set[str] = set()
    for statement in service_policy()["Statement"]:
        actions |= set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    return actions


async def test_the_policy_grants_exactly_the_operations_the_adapters_send(
    emulator_endpoint: str, tmp_path: Path
) -> None:
    recorder = Recorder()
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    await upgrade(url)
    # The shipped tiers plus the example that uses every template field (resource servers,
    # several clients, extra roles for groups and role-mapping rules).
    root = Path(__file__).resolve().parents[2]
    tiers_file = tmp_path / "tiers.toml"
    tiers_file.write_text((root / "service" / "tiers.toml").read_text() + "\n" + (root / "docs" / "examples" / "tiers-full.toml").read_text())
    settings = load_settings(
        tiers_file=tiers_file,
        database_url=url,
        aws_endpoint_url=emulator_endpoint,
        aws_strict_params=True,
        aws_max_attempts=2,
        bootstrap_api_key=API_KEY,
        resource_prefix="lpr",
        role_permissions_boundary=BOUNDARY,
        poll_interval_s=0.05,
        var_dir=tmp_path,
        event_bus_name=EVENT_BUS,  # lifecycle events: PutEvents on the bus
        events_poll_interval_s=0.05,
    )
    with contextlib.suppress(ClientError):  # made by an earlier run against the same emulator
        boto("events", emulator_endpoint).create_event_bus(Name=EVENT_BUS)
    container = Container.from_settings(settings)
    reads = SecretReads()
    container.aws_event_hooks = [("before-call", recorder), ("before-parameter-build", reads)]
    # A role and a secret left by an earlier attempt, ours by their tags: onboarding adopts them,
    # re-binds the role to the boundary (PutRolePermissionsBoundary) and re-stores the secret
    # (PutSecretValue), the calls only adoption makes.
    tenant_id = unique_id("lpr")
    names = ResourceNames("lpr", tenant_id)
    tags = [{"Key": k, "Value": v} for k, v in ownership_tags(tenant_id).items()]
    boto("iam", emulator_endpoint).create_role(
        RoleName=names.role("auth"), Path="/tenants/", AssumeRolePolicyDocument="{}", Tags=tags
    )
    boto("secretsmanager", emulator_endpoint).create_secret(Name=names.client_secret, SecretString="stale", Tags=tags)
    async with AsyncTestClient(create_app(settings, container=container)) as client:
        client.headers.update(AUTH)
        # The tenant's own sign-in and tags, then two PATCHes: one provider replaced by another
        # (Create, Delete, the secret read and deleted, tags removed), then one changed (Update).
        oidc = {"type": "OIDC", "issuer": "https://idp.lp.example", "client_id": "lp", "client_secret": "lp-s", "scopes": ["openid"]}
        # A fresh tenant's first run creates without looking; a step retried after an error looks
        # first (ListUserPoolClients, AdminGetUser). CreateUserPoolClient is sent once and retried
        # by its step; AdminCreateUser is retried by botocore only (one retry layer), so throttling
        # it past the budget (2 attempts) fails the tenant, and the retry looks before creating.
        set_faults(emulator_endpoint, operation="CreateUserPoolClient", error="TooManyRequestsException", count=1)
        set_faults(emulator_endpoint, operation="AdminCreateUser", error="TooManyRequestsException", count=2)
        try:
            tenant = await onboard(client, tenant_id, tags={"team": "a"}, identity_providers={"lp-oidc": oidc})
        finally:
            clear_faults(emulator_endpoint)
        assert tenant["status"] == "failed" and tenant["last_error"]["step"] == "admin_user", tenant["last_error"]
        assert (await client.post(f"/v1/tenants/{tenant_id}/retry")).status_code == 202
        tenant = await wait_status(client, tenant_id, {"active", "failed"})
        assert tenant["status"] == "active", tenant["last_error"]
        role = boto("iam", emulator_endpoint).get_role(RoleName=names.role("auth"))["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY
        google = {"type": "Google", "client_id": "g", "client_secret": "g-s", "scopes": ["email"]}
        for patch in (
            {"display_name": "LP", "tags": {"team": None, "x": "1"}, "identity_providers": {"lp-oidc": None, "Google": google}},
            {"tags": {"x": None}, "identity_providers": {"Google": {"client_id": "g2"}}},
        ):
            response = await client.patch(f"/v1/tenants/{tenant_id}", json=patch, headers={"Prefer": "wait=30"})
            assert response.status_code == 200 and response.json()["settings_status"] == "applied", response.text
        assert (await tear_down(client, tenant_id))["status"] == "deleted"
        full_id = unique_id("lpf")
        assert (await onboard(client, full_id, tier="enterprise"))["status"] == "active"
        assert (await tear_down(client, full_id))["status"] == "deleted"
        for _ in range(200):  # the dispatcher sends the lifecycle events
            if "events:PutEvents" in recorder.calls:
                break
            await asyncio.sleep(0.05)
    # The orphan sweep (tenantctl sweep), with the same recorder, on this test's event loop.
    sweeper = Container.from_settings(settings.model_copy(update={"worker_enabled": False}))
    sweeper.aws_event_hooks = [("before-call", recorder)]
    await sweeper.start()
    try:
        assert sweeper.sweep is not None
        await sweeper.sweep(apply=False)
    finally:
        await sweeper.stop()

    sent = recorder.calls - UNAUTHORIZED
    assert {"iam:PutRolePermissionsBoundary", "secretsmanager:PutSecretValue", "iam:ListRoles"} <= sent
    policy = granted()
    assert not sent - policy, f"the adapters sent {sorted(sent - policy)}, which deploy/iam-policy.json does not grant"
    needless = policy - sent - set(IMPLIED)
    assert not needless, f"deploy/iam-policy.json grants {sorted(needless)}, which no adapter sent"
    for implied, by in IMPLIED.items():
        assert implied in policy and by in sent, (implied, by)
    # Secrets read back: only the tenant identity providers' client secrets (what the policy's
    # GetSecretValue on tenants/*/idp/* allows). App client secrets are read once, from Cognito
    # (DescribeUserPoolClient), to be copied into Secrets Manager, and never read back from it.
    assert reads.secret_ids, "no provider secret was read back: the test lost its coverage"
    not_idp = [s for s in reads.secret_ids if not re.search(r"(^|:secret:)lpr/[a-z0-9-]+/idp/[A-Za-z0-9._-]+/secret", s)]
    assert not not_idp, f"GetSecretValue of secrets other than identity-provider secrets: {not_idp}"
    assert "cognito-idp:DescribeUserPoolClient" in sent
