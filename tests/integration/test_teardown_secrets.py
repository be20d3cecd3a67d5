"""Teardown leaves no identity-provider secret of the tenant behind, over HTTP against the emulator:
also one whose provider a PATCH removed while the prune failed (a DeleteSecret fault injected
through `/_emulator/faults`), and never one of another tenant whose id starts with this one's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.aws.clients import AwsClients
from adapters.aws.emulator import clear_faults, set_faults
from adapters.aws.gateways import SecretsManagerGateway
from adapters.aws.param_check import ParamChecker
from adapters.registry.migrate import upgrade
from domain.naming import ResourceNames, ownership_tags
from domain.tenant import Cell
from tests.helpers import boto, unique_id
from tests.integration.test_api import AUTH, PREFIX, make_app

WAIT = {"Prefer": "wait=30"}
OIDC = {
    "type": "OIDC",
    "issuer": "https://login.acme.example",
    "client_id": "acme-client",
    "client_secret": "oidc-very-secret-teardown",
    "scopes": ["openid", "email"],
}


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("teardown-secrets")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url)) as c:
        c.headers.update(AUTH)
        yield c
    clear_faults(emulator_endpoint)


def secret_names(endpoint: str) -> set[str]:
    pages = boto("secretsmanager", endpoint).get_paginator("list_secrets").paginate()
    return {secret["Name"] for page in pages for secret in page["SecretList"]}


async def onboard(client: Any, tenant_id: str) -> None:
    body = {"tenant_id": tenant_id, "tier": "premium", "display_name": "Acme", "identity_providers": {"acme-oidc": OIDC}}
    response = await client.post("/v1/tenants", json=body, headers=WAIT)
    assert response.status_code == 201 and response.json()["status"] == "active", response.text


async def test_a_secret_left_by_a_failed_prune_goes_with_the_tenant_and_acme_corp_keeps_its(
    client: Any, emulator_endpoint: str
) -> None:
    tenant_id = unique_id("acme")
    neighbour = f"{tenant_id}-corp"  # its names start with the tenant's: <prefix>/<tenant_id>-corp/...
    await onboard(client, tenant_id)
    await onboard(client, neighbour)
    secret = f"{PREFIX}/{tenant_id}/idp/acme-oidc/secret"
    assert secret in secret_names(emulator_endpoint)

    # The PATCH removes the provider; every DeleteSecret is refused, so its job fails in the prune.
    set_faults(
        emulator_endpoint,
        service="secretsmanager",
        operation="DeleteSecret",
        error="AccessDeniedException",
        message="not now",
        status=400,
        count=None,
    )
    try:
        patched = await client.patch(f"/v1/tenants/{tenant_id}", json={"identity_providers": {"acme-oidc": None}}, headers=WAIT)
    finally:
        clear_faults(emulator_endpoint)
    assert patched.status_code == 200, patched.text
    tenant = patched.json()
    assert tenant["settings_status"] == "failed" and tenant["last_error"]["step"] == "prune_identity_providers", tenant
    assert tenant["settings"]["identity_providers"] == {}
    assert secret in secret_names(emulator_endpoint)  # the settings no longer name it
    # And a request that crashed after storing a provider's secret, before committing it.
    sm = boto("secretsmanager", emulator_endpoint)
    crashed = f"{PREFIX}/{tenant_id}/idp/Facebook/secret"
    sm.create_secret(Name=crashed, SecretString="x", Tags=[{"Key": k, "Value": v} for k, v in ownership_tags(tenant_id).items()])
    untagged = f"{PREFIX}/{tenant_id}/idp/Other/secret"  # not the service's: never deleted
    sm.create_secret(Name=untagged, SecretString="x", Tags=[{"Key": "owner", "Value": "someone"}])

    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers=WAIT)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    left = secret_names(emulator_endpoint)
    assert {name for name in left if name.startswith(f"{PREFIX}/{tenant_id}/")} == {untagged}, left
    assert f"{PREFIX}/{neighbour}/idp/acme-oidc/secret" in left
    assert f"{PREFIX}/{neighbour}/app-client/secret" in left

    # The step deleted something: recorded done, not skipped.
    events = (await client.get(f"/v1/tenants/{tenant_id}/events", params={"limit": 200})).json()["items"]
    outcomes = [e["outcome"] for e in events if e["action"] == "step.delete_identity_provider_secrets"]
    assert outcomes == ["ok"], events


async def test_the_gateways_prefix_listing_is_a_prefix_match_on_whole_names(emulator_endpoint: str) -> None:
    tenant_id = unique_id("acme")
    sm = boto("secretsmanager", emulator_endpoint)
    names = [
        f"{PREFIX}/{tenant_id}/idp/a/secret",
        f"{PREFIX}/{tenant_id}/idp/b/secret",
        f"{PREFIX}/{tenant_id}-corp/idp/a/secret",
        f"{PREFIX}/{tenant_id}/app-client/secret",
        f"{PREFIX}/{tenant_id.upper()}/idp/a/secret",  # the filter is case-sensitive
    ]
    for name in names:
        sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": k, "Value": v} for k, v in ownership_tags(tenant_id).items()])
    async with AwsClients(
        region="us-east-1",
        endpoint_url=emulator_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
        event_hooks=[ParamChecker().hook],  # the filter checked against botocore's model
    ) as aws:
        cell = Cell(account_id=await aws.caller_identity(), region="us-east-1")
        # A page of 1: the listing follows every NextToken.
        gateway = SecretsManagerGateway(aws, page_size=1)
        prefix = ResourceNames(PREFIX, tenant_id).identity_provider_secrets_prefix
        found = await gateway.list_secrets_with_prefix(cell, prefix=prefix)
    assert sorted(s.name for s in found) == names[:2]
    assert all(s.tags == ownership_tags(tenant_id) and s.arn for s in found)
