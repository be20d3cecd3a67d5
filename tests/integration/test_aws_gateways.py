"""The AWS gateways over real HTTP against the local emulator, every request checked against
botocore's models (pattern, length, enum) before it is sent."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.aws.clients import AwsClients
from adapters.aws.gateways import CognitoIdentityPoolGateway, CognitoUserPoolGateway, IamRoleGateway
from adapters.aws.param_check import AwsParamViolation, ParamChecker
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID, ownership_tags
from domain.policies import render_role_policy, trust_policy
from domain.ports import CloudResource
from domain.tenant import Cell
from domain.tiers import Group, TierTemplate

REGION = "us-east-1"

TEMPLATE = TierTemplate.model_validate(
    {
        "name": "gold",
        "description": "Everything, with TOTP MFA and a hosted UI",
        "feature_plan": "PLUS",
        "deletion_protection": True,
        "mfa": "OPTIONAL",
        "mfa_methods": ["TOTP"],
        "password_policy": {"minimum_length": 12, "require_symbols": True, "temporary_password_validity_days": 3},
        "tokens": {"access_token_minutes": 15, "id_token_minutes": 30, "refresh_token_days": 7},
        "app_client": {"explicit_auth_flows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]},
        "groups": [{"name": "admins", "description": "Tenant administrators", "precedence": 0}, {"name": "users"}],
        "admin_group": "admins",
        "hosted_ui_domain": True,
        "authenticated_policy": [
            {
                "Sid": "OwnPrefix",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:{{partition}}:s3:::data/{{tenant_id}}/${cognito-identity.amazonaws.com:sub}/*",
            }
        ],
    }
)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def checker() -> ParamChecker:
    return ParamChecker()


@pytest.fixture(scope="module")
async def clients(emulator_endpoint: str, checker: ParamChecker) -> AsyncIterator[AwsClients]:
    async with AwsClients(
        region=REGION,
        endpoint_url=emulator_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
        retry_mode="standard",
        event_hooks=[checker.hook],
    ) as aws:
        yield aws


@pytest.fixture(scope="module")
async def cell(clients: AwsClients) -> Cell:
    return Cell(account_id=await clients.caller_identity(), region=REGION)


@pytest.fixture(scope="module")
def user_pools(clients: AwsClients) -> CognitoUserPoolGateway:
    return CognitoUserPoolGateway(clients)


@pytest.fixture(scope="module")
def identity_pools(clients: AwsClients) -> CognitoIdentityPoolGateway:
    return CognitoIdentityPoolGateway(clients)


@pytest.fixture(scope="module")
def iam(clients: AwsClients) -> IamRoleGateway:
    return IamRoleGateway(clients)


@pytest.fixture
async def pool(user_pools: CognitoUserPoolGateway, cell: Cell) -> Any:
    tenant = unique()
    return await user_pools.create_user_pool(cell, name=f"tp-{tenant}", template=TEMPLATE, tags=ownership_tags(tenant))


async def test_clients_report_the_emulator_account(cell: Cell) -> None:
    assert cell.account_id.isdigit() and len(cell.account_id) == 12


async def test_user_pool_is_created_from_the_template(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell
) -> None:
    tenant = unique()
    created = await user_pools.create_user_pool(cell, name=f"tp-{tenant}", template=TEMPLATE, tags=ownership_tags(tenant))

    assert created.name == f"tp-{tenant}"
    assert created.arn == f"arn:aws:cognito-idp:{REGION}:{cell.account_id}:userpool/{created.id}"
    assert created.tags == ownership_tags(tenant)
    assert created.extra == {"domain": None, "deletion_protection": "ACTIVE", "tenant_id_attribute": True}
    described = (await clients.client("cognito-idp").describe_user_pool(UserPoolId=created.id))["UserPool"]
    assert described["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireUppercase": True,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert described["DeletionProtection"] == "ACTIVE"
    assert described["UsernameAttributes"] == ["email"]
    assert described["AutoVerifiedAttributes"] == ["email"]
    assert described["UserPoolTier"] == "PLUS"
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["MfaConfiguration"] == "OFF"


async def test_user_pool_is_found_by_id_and_by_name(
    user_pools: CognitoUserPoolGateway, cell: Cell, pool: Any
) -> None:
    by_id = await user_pools.find_user_pool(cell, pool_id=pool.id, name="ignored")
    by_name = await user_pools.find_user_pool(cell, pool_id=None, name=pool.name)

    assert by_id == pool
    assert by_name == pool
    assert await user_pools.find_user_pool(cell, pool_id=None, name=unique("absent")) is None
    assert await user_pools.find_user_pool(cell, pool_id=f"{REGION}_doesnotexist", name=pool.name) is None


async def test_configure_mfa_turns_on_totp(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell, pool: Any
) -> None:
    await user_pools.configure_mfa(cell, pool_id=pool.id, template=TEMPLATE)

    mfa = await clients.client("cognito-idp").get_user_pool_mfa_config(UserPoolId=pool.id)
    assert mfa["MfaConfiguration"] == "OPTIONAL"
    assert mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}


async def test_app_client_is_created_and_found(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell, pool: Any
) -> None:
    client_id = await user_pools.create_app_client(cell, pool_id=pool.id, name=f"{pool.name}-app", template=TEMPLATE)

    assert await user_pools.find_app_client(cell, pool_id=pool.id, name=f"{pool.name}-app") == client_id
    assert await user_pools.find_app_client(cell, pool_id=pool.id, name="other") is None
    described = (
        await clients.client("cognito-idp").describe_user_pool_client(UserPoolId=pool.id, ClientId=client_id)
    )["UserPoolClient"]
    assert described["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert "ClientSecret" not in described
    assert (described["AccessTokenValidity"], described["IdTokenValidity"], described["RefreshTokenValidity"]) == (15, 30, 7)
    assert described["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}
    assert described["PreventUserExistenceErrors"] == "ENABLED"


async def test_groups_are_created_once(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell, pool: Any
) -> None:
    for group in TEMPLATE.groups:
        await user_pools.create_group(cell, pool_id=pool.id, group=group)

    with pytest.raises(CloudAlreadyExists) as caught:
        await user_pools.create_group(cell, pool_id=pool.id, group=Group(name="admins"))
    assert caught.value.code == "GroupExistsException"
    assert caught.value.operation == "CreateGroup"
    admins = (await clients.client("cognito-idp").get_group(UserPoolId=pool.id, GroupName="admins"))["Group"]
    assert (admins["Description"], admins["Precedence"]) == ("Tenant administrators", 0)


async def test_domain_lifecycle(user_pools: CognitoUserPoolGateway, cell: Cell, pool: Any) -> None:
    domain = unique("tp")
    assert await user_pools.domain_owner(cell, domain=domain) is None

    await user_pools.create_domain(cell, pool_id=pool.id, domain=domain)
    assert await user_pools.domain_owner(cell, domain=domain) == pool.id
    found = await user_pools.find_user_pool(cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.extra["domain"] == domain

    await user_pools.delete_domain(cell, pool_id=pool.id, domain=domain)
    assert await user_pools.domain_owner(cell, domain=domain) is None


async def test_users_are_created_and_added_to_groups(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell, pool: Any
) -> None:
    await user_pools.create_group(cell, pool_id=pool.id, group=Group(name="admins"))
    username = "admin@example.com"
    assert await user_pools.user_exists(cell, pool_id=pool.id, username=username) is False

    await user_pools.create_user(cell, pool_id=pool.id, username=username, email=username)
    assert await user_pools.user_exists(cell, pool_id=pool.id, username=username) is True
    with pytest.raises(CloudAlreadyExists) as caught:
        await user_pools.create_user(cell, pool_id=pool.id, username=username, email=username)
    assert caught.value.code == "UsernameExistsException"

    await user_pools.add_user_to_group(cell, pool_id=pool.id, username=username, group="admins")
    groups = await clients.client("cognito-idp").admin_list_groups_for_user(UserPoolId=pool.id, Username=username)
    assert [g["GroupName"] for g in groups["Groups"]] == ["admins"]
    user = await clients.client("cognito-idp").admin_get_user(UserPoolId=pool.id, Username=username)
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email_verified"] == "true"


async def test_user_exists_on_a_deleted_pool_is_not_found(user_pools: CognitoUserPoolGateway, cell: Cell) -> None:
    with pytest.raises(CloudNotFound) as caught:
        await user_pools.user_exists(cell, pool_id=f"{REGION}_doesnotexist", username="u@example.com")
    assert caught.value.code == "ResourceNotFoundException"


async def test_user_pool_teardown_order(
    user_pools: CognitoUserPoolGateway, clients: AwsClients, cell: Cell, pool: Any
) -> None:
    domain = unique("tp")
    await user_pools.create_domain(cell, pool_id=pool.id, domain=domain)

    with pytest.raises(CloudError) as protected:
        await user_pools.delete_user_pool(cell, pool_id=pool.id)
    assert not protected.value.retryable and "deletion protection" in protected.value.message

    await user_pools.set_deletion_protection(cell, pool_id=pool.id, active=False)
    found = await user_pools.find_user_pool(cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.extra["deletion_protection"] == "INACTIVE"
    assert found.tags == pool.tags  # UpdateUserPool kept the ownership tags...
    described = (await clients.client("cognito-idp").describe_user_pool(UserPoolId=pool.id))["UserPool"]
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # ...and closed sign-up
    assert described["UserPoolTier"] == "PLUS"
    with pytest.raises(CloudError, match="domain"):
        await user_pools.delete_user_pool(cell, pool_id=pool.id)

    await user_pools.delete_domain(cell, pool_id=pool.id, domain=domain)
    await user_pools.delete_user_pool(cell, pool_id=pool.id)
    assert await user_pools.find_user_pool(cell, pool_id=pool.id, name=pool.name) is None
    with pytest.raises(CloudNotFound):
        await user_pools.delete_user_pool(cell, pool_id=pool.id)
    with pytest.raises(CloudNotFound):
        await user_pools.set_deletion_protection(cell, pool_id=pool.id, active=False)


async def test_identity_pool_lifecycle(
    identity_pools: CognitoIdentityPoolGateway,
    user_pools: CognitoUserPoolGateway,
    iam: IamRoleGateway,
    clients: AwsClients,
    cell: Cell,
    pool: Any,
) -> None:
    tenant = unique()
    client_id = await user_pools.create_app_client(cell, pool_id=pool.id, name=f"{pool.name}-app", template=TEMPLATE)
    provider = f"cognito-idp.{REGION}.amazonaws.com/{pool.id}"
    created = await identity_pools.create_identity_pool(
        cell,
        name=f"tp-{tenant}",
        provider_name=provider,
        client_id=client_id,
        allow_unauthenticated=False,
        tags=ownership_tags(tenant),
    )
    assert created.tags == ownership_tags(tenant)
    assert created.arn == f"arn:aws:cognito-identity:{REGION}:{cell.account_id}:identitypool/{created.id}"

    assert await identity_pools.find_identity_pool(cell, pool_id=None, name=f"tp-{tenant}") == created
    assert await identity_pools.find_identity_pool(cell, pool_id=created.id, name="ignored") == created
    assert await identity_pools.find_identity_pool(cell, pool_id=None, name=unique("absent")) is None
    described = await clients.client("cognito-identity").describe_identity_pool(IdentityPoolId=created.id)
    # (moto 5.2.5 neither stores nor reports AllowClassicFlow, so it cannot be asserted here.)
    assert described["AllowUnauthenticatedIdentities"] is False
    assert described["CognitoIdentityProviders"] == [
        {"ProviderName": provider, "ClientId": client_id, "ServerSideTokenCheck": True}
    ]

    role = await iam.create_role(
        cell,
        name=f"tp-{tenant}-auth",
        path="/tenants/",
        trust_policy=trust_policy(created.id, authenticated=True),
        tags=ownership_tags(tenant),
        description="authenticated",
    )
    await identity_pools.set_roles(cell, identity_pool_id=created.id, roles={"authenticated": role.arn})
    roles = await clients.client("cognito-identity").get_identity_pool_roles(IdentityPoolId=created.id)
    assert roles["Roles"] == {"authenticated": role.arn}

    await identity_pools.delete_identity_pool(cell, identity_pool_id=created.id)
    assert await identity_pools.find_identity_pool(cell, pool_id=created.id, name=f"tp-{tenant}") is None
    with pytest.raises(CloudNotFound):
        await identity_pools.delete_identity_pool(cell, identity_pool_id=created.id)


async def test_role_lifecycle(iam: IamRoleGateway, clients: AwsClients, cell: Cell) -> None:
    tenant = unique()
    name = f"tp-{tenant}-auth"
    identity_pool_id = f"{REGION}:{uuid.uuid4()}"
    created = await iam.create_role(
        cell,
        name=name,
        path="/tenants/",
        trust_policy=trust_policy(identity_pool_id, authenticated=True),
        tags=ownership_tags(tenant),
        description=f"Authenticated users of tenant {tenant}",
    )
    assert created.arn == f"arn:aws:iam::{cell.account_id}:role/tenants/{name}"

    found = await iam.get_role(cell, name=name)
    assert found is not None
    assert (found.id, found.name, found.arn, found.tags) == (name, name, created.arn, ownership_tags(tenant))
    assert found.extra["trust_policy"] == trust_policy(identity_pool_id, authenticated=True)
    assert await iam.get_role(cell, name=unique("absent")) is None
    with pytest.raises(CloudAlreadyExists) as caught:
        await iam.create_role(cell, name=name, path="/tenants/", trust_policy={}, tags={}, description="")
    assert caught.value.code == "EntityAlreadyExists"

    unauth_trust = trust_policy(identity_pool_id, authenticated=False)
    await iam.update_trust_policy(cell, name=name, trust_policy=unauth_trust)
    role = (await clients.client("iam").get_role(RoleName=name))["Role"]
    assert role["AssumeRolePolicyDocument"] == unauth_trust
    assert role["MaxSessionDuration"] == 3600

    values = {
        "tenant_id": tenant,
        "partition": "aws",
        "region": REGION,
        "account_id": cell.account_id,
        "user_pool_id": f"{REGION}_abc",
        "user_pool_arn": "arn",
        "identity_pool_id": identity_pool_id,
    }
    document = render_role_policy(TEMPLATE.authenticated_policy, values)
    await iam.put_role_policy(cell, role_name=name, policy_name=f"{name}-policy", document=document)
    assert await iam.list_role_policies(cell, role_name=name) == [f"{name}-policy"]
    stored = await clients.client("iam").get_role_policy(RoleName=name, PolicyName=f"{name}-policy")
    assert stored["PolicyDocument"] == document

    await iam.delete_role_policy(cell, role_name=name, policy_name=f"{name}-policy")
    assert await iam.list_role_policies(cell, role_name=name) == []
    await iam.delete_role(cell, name=name)
    assert await iam.get_role(cell, name=name) is None
    with pytest.raises(CloudNotFound) as gone:
        await iam.delete_role(cell, name=name)
    assert gone.value.code == "NoSuchEntity" and gone.value.operation == "DeleteRole"


async def test_owned_pools_are_listed_with_their_tags_and_foreign_ones_are_not(
    user_pools: CognitoUserPoolGateway,
    identity_pools: CognitoIdentityPoolGateway,
    clients: AwsClients,
    cell: Cell,
    pool: Any,
) -> None:
    foreign_pool = (await clients.client("cognito-idp").create_user_pool(PoolName=pool.name))["UserPool"]["Id"]
    tenant = pool.tags[TAG_TENANT_ID]
    provider = f"cognito-idp.{REGION}.amazonaws.com/{pool.id}"
    owned_identity = await identity_pools.create_identity_pool(
        cell, name=pool.name, provider_name=provider, client_id="c" * 26, allow_unauthenticated=False,
        tags=ownership_tags(tenant),
    )
    foreign_identity = (
        await clients.client("cognito-identity").create_identity_pool(
            IdentityPoolName=pool.name, AllowUnauthenticatedIdentities=False,
            IdentityPoolTags={TAG_TENANT_ID: tenant},  # no managed-by tag
        )
    )["IdentityPoolId"]

    listed_pools = {r.id: r for r in await user_pools.list_owned_user_pools(cell)}
    listed_identity = {r.id: r for r in await identity_pools.list_owned_identity_pools(cell)}

    assert listed_pools[pool.id] == pool  # tags, ARN, domain and deletion protection as find reports them
    assert listed_identity[owned_identity.id] == owned_identity
    assert foreign_pool not in listed_pools and foreign_identity not in listed_identity
    for resource in [*listed_pools.values(), *listed_identity.values()]:
        assert resource.tags[TAG_MANAGED_BY] == MANAGED_BY_VALUE


async def test_owned_roles_are_listed_under_the_path_page_by_page(
    iam: IamRoleGateway, clients: AwsClients, cell: Cell
) -> None:
    path = f"/{unique('sweep')}/"
    tenant = unique()
    owned = [
        await iam.create_role(
            cell, name=f"tp-{tenant}-{kind}", path=path, trust_policy=trust_policy(f"{REGION}:{uuid.uuid4()}", authenticated=True),
            tags=ownership_tags(tenant), description="",
        )
        for kind in ("auth", "unauth")
    ]
    await clients.client("iam").create_role(RoleName=f"tp-{tenant}-untagged", Path=path, AssumeRolePolicyDocument="{}")
    await iam.create_role(cell, name=f"tp-{tenant}-elsewhere", path="/", trust_policy={}, tags=ownership_tags(tenant), description="")
    # One role per ListRoles page: the paginator follows the Marker.
    listed = await IamRoleGateway(clients, page_size=1).list_owned_roles(cell, path_prefix=path)

    assert sorted(listed, key=lambda r: r.id) == sorted(
        [CloudResource(id=r.id, name=r.name, arn=r.arn, tags=r.tags, extra={"path": path}) for r in owned],
        key=lambda r: r.id,
    )


async def test_a_request_aws_would_refuse_never_leaves(iam: IamRoleGateway, checker: ParamChecker, cell: Cell) -> None:
    before = checker.checked
    with pytest.raises(AwsParamViolation, match="RoleName"):
        await iam.create_role(cell, name="a b", path="/tenants/", trust_policy={}, tags={}, description="")
    assert await iam.get_role(cell, name="a b".replace(" ", "")) is None
    assert checker.checked == before + 1  # the GetRole; the CreateRole was stopped


async def test_the_checker_is_on_every_client(
    user_pools: CognitoUserPoolGateway, identity_pools: CognitoIdentityPoolGateway, checker: ParamChecker, cell: Cell
) -> None:
    with pytest.raises(AwsParamViolation, match="Domain"):
        await user_pools.domain_owner(cell, domain="Not A Domain")
    with pytest.raises(AwsParamViolation, match="IdentityPoolId"):
        await identity_pools.find_identity_pool(cell, pool_id="no colon here", name="x")
    assert await user_pools.domain_owner(cell, domain=unique("free")) is None
    assert checker.operations[-1] == "DescribeUserPoolDomain"


async def test_a_cell_in_another_region_is_refused(user_pools: CognitoUserPoolGateway, cell: Cell) -> None:
    with pytest.raises(CloudError) as caught:
        await user_pools.find_user_pool(Cell(cell.account_id, "eu-west-1"), pool_id=None, name="x")
    assert caught.value.code == "CellNotServed"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_endpoint_is_a_retryable_cloud_error() -> None:
    started = time.monotonic()
    async with AwsClients(
        region=REGION,
        endpoint_url=f"http://127.0.0.1:{_free_port()}",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=1,
    ) as unreachable:
        with pytest.raises(CloudError) as caught:
            await IamRoleGateway(unreachable).get_role(Cell("123456789012", REGION), name="r")
    assert caught.value.retryable
    assert caught.value.code == "EndpointConnectionError"
    assert caught.value.operation == "GetRole"
    assert "testing" not in caught.value.message
    assert not isinstance(caught.value, CloudNotFound)
    assert time.monotonic() - started < 5


async def test_role_permissions_boundary_is_set_reported_and_replaced(iam: IamRoleGateway, cell: Cell) -> None:
    boundary = f"arn:aws:iam::{cell.account_id}:policy/tenant-roles-boundary"
    other = f"arn:aws:iam::{cell.account_id}:policy/boundaries/stricter"
    tenant = unique()
    bounded = await iam.create_role(
        cell, name=f"tp-{tenant}-auth", path="/tenants/", trust_policy={}, tags=ownership_tags(tenant),
        description="", permissions_boundary=boundary,
    )
    assert bounded.extra["permissions_boundary"] == boundary
    found = await iam.get_role(cell, name=f"tp-{tenant}-auth")
    assert found is not None and found.extra["permissions_boundary"] == boundary

    await iam.set_permissions_boundary(cell, name=f"tp-{tenant}-auth", boundary_arn=other)
    found = await iam.get_role(cell, name=f"tp-{tenant}-auth")
    assert found is not None and found.extra["permissions_boundary"] == other

    await iam.create_role(cell, name=f"tp-{tenant}-unauth", path="/tenants/", trust_policy={}, tags={}, description="")
    unbounded = await iam.get_role(cell, name=f"tp-{tenant}-unauth")
    assert unbounded is not None and unbounded.extra["permissions_boundary"] is None
    with pytest.raises(CloudNotFound):
        await iam.set_permissions_boundary(cell, name=unique("absent"), boundary_arn=boundary)
