"""A tenant's own sign-in over HTTP, on SQLite and PostgreSQL, against the emulator: POST with an
OIDC and a social provider, the providers in the pool with the secret read back from Secrets
Manager (and nowhere in the registry), GET without secrets, PATCH in place, refusals, teardown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from tests.helpers import API_KEY, boto, unique_id, wait_status
from tests.integration.databases import throwaway_database
from tests.integration.test_api import AUTH, PREFIX, make_app, postgres_for_api  # noqa: F401 (fixture)
from tests.unit.test_naming_rules import DISAGREED_TAGS, DISAGREED_URLS, WEB, template_verdict

TIERS_TOML = """
[tiers.sso]
description = "A web client with the code flow and a machine client."
hosted_ui_domain = true
tags = { tier = "sso" }

[[tiers.sso.resource_servers]]
identifier = "api"
name = "API"
scopes = [{ name = "read", description = "read" }]

[tiers.sso.app_clients.web]
oauth_flows = ["code"]
oauth_scopes = ["openid", "email"]
callback_urls = ["https://default.example/cb"]

[tiers.sso.app_clients.machine]
oauth_flows = ["client_credentials"]
generate_secret = true
oauth_scopes = ["api/read"]

[[tiers.sso.authenticated_policy]]
Effect = "Allow"
Action = ["s3:GetObject"]
Resource = ["arn:{{partition}}:s3:::data/{{tenant_id}}/*"]
"""
OIDC_SECRET = "oidc-very-secret-4f1c"
GOOGLE_SECRET = "google-very-secret-9a2d"
SAML_DOC = '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.acme.example"/>'


def tenant_body(tenant_id: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "tier": "sso",
        "display_name": "Acme",
        "callback_urls": ["https://app.acme.example/cb"],
        "logout_urls": ["https://app.acme.example/bye"],
        "tags": {"cost-center": "cc-1"},
        "identity_providers": {
            "acme-oidc": {
                "type": "OIDC",
                "issuer": "https://login.acme.example",
                "client_id": "acme-client",
                "client_secret": OIDC_SECRET,
                "scopes": ["openid", "email"],
                "attributes_request_method": "POST",
                "attribute_mapping": {"email": "email"},
            },
            "Google": {"type": "Google", "client_id": "g.apps", "client_secret": GOOGLE_SECRET, "scopes": ["openid", "email"]},
        },
    }


@pytest.fixture(scope="module")
async def world(
    postgres_for_api: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str  # noqa: F811
) -> AsyncIterator[tuple[Any, str]]:
    tmp = tmp_path_factory.mktemp("settings")
    tiers = tmp / "tiers.toml"
    tiers.write_text(TIERS_TOML)
    async with contextlib.AsyncExitStack() as stack:
        if postgres_for_api is None:
            url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres_for_api))
        await upgrade(url)
        async with AsyncTestClient(make_app(tmp, emulator_endpoint, url, tiers_file=tiers)) as client:
            client.headers.update(AUTH)
            yield client, url


async def registry_dump(url: str) -> str:
    """Every registry row that could hold a secret, as text."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = []
            for table in ("tenants", "jobs", "audit_events", "idempotency_keys"):
                rows += [json.dumps(list(r), default=str) for r in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
            return "\n".join(rows)
    finally:
        await engine.dispose()


async def wait_settings(client: Any, tenant_id: str, timeout: float = 30.0) -> dict[str, Any]:
    for _ in range(int(timeout / 0.05)):
        tenant = (await client.get(f"/v1/tenants/{tenant_id}")).json()
        if tenant["settings_status"] != "pending":
            return tenant
        await asyncio.sleep(0.05)
    raise AssertionError(f"settings of {tenant_id} still pending")


async def test_onboard_with_own_providers_patch_them_and_tear_down(world: tuple[Any, str], emulator_endpoint: str) -> None:
    client, url = world
    tenant_id = unique_id("sso")
    response = await client.post("/v1/tenants", json=tenant_body(tenant_id))
    assert response.status_code == 202, response.text
    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert tenant["status"] == "active", tenant
    pool_id = tenant["resources"]["user_pool_id"]

    # GET shows the settings, with where each secret is and never the secret.
    settings = tenant["settings"]
    assert settings["callback_urls"] == ["https://app.acme.example/cb"]
    assert settings["tags"] == {"cost-center": "cc-1"}
    oidc = settings["identity_providers"]["acme-oidc"]
    assert oidc["client_secret_arn"].startswith("arn:aws:secretsmanager:") and "client_secret" not in oidc
    assert OIDC_SECRET not in response.text and GOOGLE_SECRET not in json.dumps(tenant)

    # The pool has the providers, with the secret Cognito got from Secrets Manager.
    idp = boto("cognito-idp", emulator_endpoint)
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="acme-oidc")["IdentityProvider"]
    assert described["ProviderType"] == "OIDC"
    assert described["ProviderDetails"] == {
        "client_id": "acme-client",
        "client_secret": OIDC_SECRET,
        "authorize_scopes": "openid email",
        "oidc_issuer": "https://login.acme.example",
        "attributes_request_method": "POST",
    }
    assert described["AttributeMapping"]["email"] == "email"
    google = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Google")["IdentityProvider"]
    assert google["ProviderType"] == "Google" and google["ProviderDetails"]["client_secret"] == GOOGLE_SECRET
    by_name = {c["ClientName"]: c["ClientId"] for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]}
    web = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=tenant["resources"]["app_client_id"])["UserPoolClient"]
    assert set(web["SupportedIdentityProviders"]) == {"COGNITO", "Google", "acme-oidc"}
    assert web["CallbackURLs"] == ["https://app.acme.example/cb"] and web["LogoutURLs"] == ["https://app.acme.example/bye"]
    machine_id = next(cid for name, cid in by_name.items() if cid != web["ClientId"])
    machine = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=machine_id)["UserPoolClient"]
    assert machine["AllowedOAuthFlows"] == ["client_credentials"] and machine["SupportedIdentityProviders"] == ["COGNITO"]
    tags = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTags"]
    assert tags["cost-center"] == "cc-1" and tags["tier"] == "sso" and tags["tenants:tenant-id"] == tenant_id

    # The secrets are in Secrets Manager, ownership-tagged; not one registry row holds them.
    sm = boto("secretsmanager", emulator_endpoint)
    stored = sm.describe_secret(SecretId=oidc["client_secret_arn"])
    assert stored["Name"] == f"{PREFIX}/{tenant_id}/idp/acme-oidc/secret"
    assert {t["Key"]: t["Value"] for t in stored["Tags"]}["tenants:tenant-id"] == tenant_id
    dump = await registry_dump(url)
    assert tenant_id in dump and OIDC_SECRET not in dump and GOOGLE_SECRET not in dump

    # The same body again: 200; another secret: 409.
    assert (await client.post("/v1/tenants", json=tenant_body(tenant_id))).status_code == 200
    changed = tenant_body(tenant_id)
    changed["identity_providers"]["Google"]["client_secret"] = "another"
    assert (await client.post("/v1/tenants", json=changed)).status_code == 409

    # PATCH (merge patch): a SAML provider in, Google out, the OIDC secret rotated, URLs and tags changed.
    patch = {
        "callback_urls": ["https://new.acme.example/cb"],
        "tags": {"cost-center": None, "team": "identity"},
        "identity_providers": {
            "Google": None,
            "acme-oidc": {"client_secret": "rotated-secret-77", "scopes": ["openid"]},
            "acme-saml": {"type": "SAML", "metadata_document": SAML_DOC},
        },
    }
    response = await client.patch(
        f"/v1/tenants/{tenant_id}", content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "active" and response.json()["settings_status"] == "pending"
    busy = await client.patch(f"/v1/tenants/{tenant_id}", json={})
    assert busy.status_code in (409, 202)  # 202 only if the worker was faster than this request
    tenant = await wait_settings(client, tenant_id)
    assert tenant["settings_status"] == "applied" and tenant["last_error"] is None, tenant
    assert set(tenant["settings"]["identity_providers"]) == {"acme-oidc", "acme-saml"}
    assert {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]} == {"acme-oidc", "acme-saml"}
    assert idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="acme-oidc")["IdentityProvider"]["ProviderDetails"]["client_secret"] == "rotated-secret-77"
    saml = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="acme-saml")["IdentityProvider"]
    assert saml["ProviderDetails"] == {"MetadataFile": SAML_DOC}
    web = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=web["ClientId"])["UserPoolClient"]
    assert set(web["SupportedIdentityProviders"]) == {"COGNITO", "acme-oidc", "acme-saml"}
    assert web["CallbackURLs"] == ["https://new.acme.example/cb"]
    assert web["AllowedOAuthFlows"] == ["code"]  # the rest of the client's configuration was sent again
    tags = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTags"]
    assert "cost-center" not in tags and tags["team"] == "identity" and tags["tenants:managed-by"]
    identity = boto("cognito-identity", emulator_endpoint)
    ip_tags = identity.describe_identity_pool(IdentityPoolId=tenant["resources"]["identity_pool_id"])["IdentityPoolTags"]
    assert "cost-center" not in ip_tags and ip_tags["team"] == "identity"
    iam = boto("iam", emulator_endpoint)
    role_tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=tenant["resources"]["authenticated_role_arn"].rsplit("/", 1)[1])["Tags"]}
    assert "cost-center" not in role_tags and role_tags["team"] == "identity"
    google_secret = f"{PREFIX}/{tenant_id}/idp/Google/secret"
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=google_secret)
    assert "rotated-secret-77" not in await registry_dump(url)
    events = (await client.get(f"/v1/tenants/{tenant_id}/events", params={"limit": 200})).json()["items"]
    assert {"tenant.update", "tenant.settings_applied"} <= {e["action"] for e in events}

    # Teardown removes the providers' secrets too.
    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 202
    await wait_status(client, tenant_id, {"deleted"})
    for name in ("acme-oidc", "Google"):
        with pytest.raises(sm.exceptions.ResourceNotFoundException):
            sm.describe_secret(SecretId=f"{PREFIX}/{tenant_id}/idp/{name}/secret")


async def test_patch_refusals_name_the_field_or_the_state(world: tuple[Any, str]) -> None:
    client, _ = world
    assert (await client.patch("/v1/tenants/nobody-here", json={})).status_code == 404
    tenant_id = unique_id("ssx")
    body = tenant_body(tenant_id)
    body["identity_providers"] = {}
    assert (await client.post("/v1/tenants", json=body)).status_code == 202
    early = await client.patch(f"/v1/tenants/{tenant_id}", json={"tags": {"a": "b"}})
    if early.status_code == 409:  # still provisioning
        assert early.json()["tenant_status"] == "provisioning"
    await wait_settings(client, tenant_id)
    await wait_status(client, tenant_id, {"active"})
    for patch, field in [
        ({"callback_urls": ["http://app.acme.example/cb"]}, "callback_urls[0]"),
        ({"tags": {"aws:reserved": "x"}}, "tags.aws:reserved"),
        ({"tier": "other"}, "tier"),
        ({"identity_providers": {"acme-oidc": {"type": "OIDC", "client_id": "x", "scopes": ["openid"], "issuer": "https://i.example"}}}, "identity_providers.acme-oidc.client_secret"),
        ({"identity_providers": {"Google": {"type": "Facebook", "client_id": "x", "client_secret": "y", "scopes": ["email"]}}}, "identity_providers.Google"),
    ]:
        response = await client.patch(f"/v1/tenants/{tenant_id}", json=patch)
        assert response.status_code == 422, (patch, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (patch, response.json())
    assert (await client.post("/v1/tenants", json={**tenant_body(unique_id("ssy")), "callback_urls": ["https://a.example/#x"]})).status_code == 422
    # Idempotency-Key: the same PATCH again is answered from the store.
    headers = {"Idempotency-Key": f"patch-{tenant_id}"}
    first = await client.patch(f"/v1/tenants/{tenant_id}", json={"display_name": "Acme Two"}, headers=headers)
    again = await client.patch(f"/v1/tenants/{tenant_id}", json={"display_name": "Acme Two"}, headers=headers)
    assert first.status_code == 202 and again.status_code == 202 and again.headers.get("idempotent-replayed") == "true"
    tenant = await wait_settings(client, tenant_id)
    assert tenant["display_name"] == "Acme Two" and tenant["settings_status"] == "applied"
    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 202
    await wait_status(client, tenant_id, {"deleted"})
    gone = await client.patch(f"/v1/tenants/{tenant_id}", json={})
    assert gone.status_code == 409 and gone.json()["tenant_status"] == "deleted"
    assert API_KEY not in gone.text


async def test_a_patch_waiting_with_prefer_is_woken_when_the_change_is_applied(world: tuple[Any, str]) -> None:
    """One wait mechanism (issue 13): PATCH's `Prefer: wait` is woken by the worker's end of the
    settings run, as POST's and DELETE's are by theirs, rather than finding out by polling."""
    client, _ = world
    tenant_id = unique_id("wake")
    response = await client.post("/v1/tenants", json={"tenant_id": tenant_id, "tier": "sso", "display_name": "Wake"})
    assert response.status_code == 202, response.text
    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    waiters = client.app.state.container.waiters
    with waiters.watch(tenant_id) as run_ended:
        patched = await client.patch(
            f"/v1/tenants/{tenant_id}", json={"tags": {"team": "wake"}}, headers={"Prefer": "wait=30"}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["settings_status"] == "applied"
        assert run_ended.is_set()  # the settings run notified the waiters when it ended


async def test_tags_and_urls_are_judged_at_the_http_edge_as_the_template_loader_judges_them(
    world: tuple[Any, str], emulator_endpoint: str
) -> None:
    """Inputs the tier-template loader and the API used to judge differently (domain/naming.py is
    now the one rule): tags of any script, which IAM takes, reach AWS from either; a URL with a
    format or control character, no host or a port out of range is refused by both, by the API
    with a 422 naming the URL."""
    client, _ = world
    tags = {key if key != "k" else f"k{i}": value for i, (key, value) in enumerate(DISAGREED_TAGS)}
    assert template_verdict(tags=tags) is None
    tenant_id = unique_id("tag")
    response = await client.post("/v1/tenants", json={**tenant_body(tenant_id), "identity_providers": {}, "tags": tags})
    assert response.status_code == 202, response.text
    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert tenant["status"] == "active", tenant
    pool_tags = boto("cognito-idp", emulator_endpoint).describe_user_pool(UserPoolId=tenant["resources"]["user_pool_id"])["UserPool"]["UserPoolTags"]
    role = tenant["resources"]["authenticated_role_arn"].rsplit("/", 1)[1]
    role_tags = {t["Key"]: t["Value"] for t in boto("iam", emulator_endpoint).list_role_tags(RoleName=role)["Tags"]}
    assert tags.items() <= pool_tags.items() and tags.items() <= role_tags.items()

    for url in DISAGREED_URLS:
        message = template_verdict(app_clients={"web": {**WEB, "callback_urls": [url]}}, hosted_ui_domain=True)
        assert message is not None and "callback_urls" in message, url
        body = {**tenant_body(unique_id("url")), "identity_providers": {}, "callback_urls": [url]}
        for response in (
            await client.post("/v1/tenants", json=body),
            await client.patch(f"/v1/tenants/{tenant_id}", json={"callback_urls": [url]}),
        ):
            assert response.status_code == 422, (url, response.text)
            assert "callback_urls[0]" in {e["field"] for e in response.json()["errors"]}, (url, response.json())
