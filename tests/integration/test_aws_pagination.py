"""List calls page through everything (botocore paginators), each page a request of its own that
goes through the clients' event hooks (where the rate limiter and the metrics hang).

70 of each resource are made with boto3 over HTTP, and the gateways list them with a page size
of 25: at least three page requests each, counted by the emulator's fault layer. The emulator is
this module's own, so its counters see only these calls.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.aws.clients import AwsClients
from adapters.aws.emulator import EmulatorServer, fault_stats
from adapters.aws.gateways import (
    CognitoIdentityPoolGateway,
    CognitoUserPoolGateway,
    IamRoleGateway,
    SecretsManagerGateway,
)
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID
from domain.tenant import Cell
from tests.helpers import boto

N = 70
PAGE = 25
PAGES = -(-N // PAGE)  # 3: at least this many page requests for N items
REGION = "us-east-1"
TAGS = {TAG_MANAGED_BY: MANAGED_BY_VALUE, TAG_TENANT_ID: "paging"}
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorServer(port=0) as server:
        yield server.endpoint_url


@pytest.fixture(scope="module")
def signed() -> Counter[str]:
    return Counter()


@pytest.fixture(scope="module")
async def aws(endpoint: str, signed: Counter[str]) -> AsyncIterator[AwsClients]:
    def count(operation_name: str = "", **_: Any) -> None:
        signed[operation_name] += 1

    async with AwsClients(
        region=REGION,
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
        retry_mode="standard",
        event_hooks=[("before-sign", count)],
    ) as clients:
        yield clients


@pytest.fixture(scope="module")
async def cell(aws: AwsClients) -> Cell:
    return Cell(account_id=await aws.caller_identity(), region=REGION)


def requests(endpoint: str, key: str) -> int:
    return int(fault_stats(endpoint)["stats"]["by_operation"].get(key, {}).get("calls", 0))


def paged(endpoint: str, key: str, signed: Counter[str], before: tuple[int, int]) -> int:
    """Page requests made since ``before`` (the emulator's count, the event hooks' count), which agree."""
    made = requests(endpoint, key) - before[0]
    assert signed[key.split(":", 1)[1]] - before[1] == made, "every page request goes through the event hooks"
    return made


def mark(endpoint: str, key: str, signed: Counter[str]) -> tuple[int, int]:
    return requests(endpoint, key), signed[key.split(":", 1)[1]]


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_owned_roles_span_pages(endpoint: str, aws: AwsClients, cell: Cell, signed: Counter[str]) -> None:
    iam = boto("iam", endpoint)
    path = f"/paging{uuid.uuid4().hex[:8]}/"
    made = {name("pg-role") for _ in range(N)}
    for role in made:
        iam.create_role(
            RoleName=role, Path=path, AssumeRolePolicyDocument=TRUST, Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()]
        )
    before = mark(endpoint, "iam:ListRoles", signed)
    owned = await IamRoleGateway(aws, page_size=PAGE).list_owned_roles(cell, path_prefix=path)
    assert {role.name for role in owned} == made
    assert paged(endpoint, "iam:ListRoles", signed, before) >= PAGES


async def test_owned_secrets_span_pages(endpoint: str, aws: AwsClients, cell: Cell, signed: Counter[str]) -> None:
    sm = boto("secretsmanager", endpoint)
    made = {name("pg-secret") for _ in range(N)}
    for secret in made:
        sm.create_secret(Name=secret, SecretString="x", Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()])
    before = mark(endpoint, "secretsmanager:ListSecrets", signed)
    owned = await SecretsManagerGateway(aws, page_size=PAGE).list_owned_secrets(cell)
    assert made <= {secret.name for secret in owned}
    assert paged(endpoint, "secretsmanager:ListSecrets", signed, before) >= PAGES


async def test_owned_identity_pools_span_pages(endpoint: str, aws: AwsClients, cell: Cell, signed: Counter[str]) -> None:
    identity = boto("cognito-identity", endpoint)
    made = {
        identity.create_identity_pool(
            IdentityPoolName=name("pg_pool").replace("-", "_"), AllowUnauthenticatedIdentities=False, IdentityPoolTags=TAGS
        )["IdentityPoolId"]
        for _ in range(N)
    }
    before = mark(endpoint, "cognito-identity:ListIdentityPools", signed)
    owned = await CognitoIdentityPoolGateway(aws, page_size=PAGE).list_owned_identity_pools(cell)
    assert made <= {pool.id for pool in owned}
    assert paged(endpoint, "cognito-identity:ListIdentityPools", signed, before) >= PAGES


async def test_owned_user_pools_and_their_clients_and_providers_span_pages(
    endpoint: str, aws: AwsClients, cell: Cell, signed: Counter[str]
) -> None:
    idp = boto("cognito-idp", endpoint)
    made = {idp.create_user_pool(PoolName=name("pg-pool"), UserPoolTags=TAGS)["UserPool"]["Id"] for _ in range(N)}
    gateway = CognitoUserPoolGateway(aws, page_size=PAGE)
    before = mark(endpoint, "cognito-idp:ListUserPools", signed)
    owned = await gateway.list_owned_user_pools(cell)
    assert made <= {pool.id for pool in owned}
    assert paged(endpoint, "cognito-idp:ListUserPools", signed, before) >= PAGES

    pool_id = min(made)
    clients = [idp.create_user_pool_client(UserPoolId=pool_id, ClientName=f"client-{i:02}") for i in range(N)]
    before = mark(endpoint, "cognito-idp:ListUserPoolClients", signed)
    last = clients[-1]["UserPoolClient"]
    assert await gateway.find_app_client(cell, pool_id=pool_id, name=last["ClientName"]) == last["ClientId"]
    assert paged(endpoint, "cognito-idp:ListUserPoolClients", signed, before) >= PAGES

    providers = {f"oidc{i:02}" for i in range(N)}
    for provider in providers:
        idp.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName=provider,
            ProviderType="OIDC",
            ProviderDetails={
                "client_id": "c",
                "client_secret": "s",
                "authorize_scopes": "openid",
                "oidc_issuer": "https://issuer.example.com",
                "attributes_request_method": "GET",
            },
        )
    before = mark(endpoint, "cognito-idp:ListIdentityProviders", signed)
    assert set(await gateway.list_identity_providers(cell, pool_id=pool_id)) == providers
    assert paged(endpoint, "cognito-idp:ListIdentityProviders", signed, before) >= PAGES
