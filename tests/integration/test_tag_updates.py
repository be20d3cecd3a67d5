"""Tag updates reach every resource a tenant owns (issue 12 item 3), over the emulator.

A tenant of the example ``enterprise`` tier (docs/examples/tiers-full.toml) has every taggable
kind the service creates: the user pool, the identity pool, the authenticated, guest and extra
(``[roles.<name>]``) roles, the secrets of its confidential app clients, and the client secrets
of its own identity providers. After a PATCH of its tags, each of them, found in the emulator
itself (not from the registry's record), carries exactly the new set: the template's, the
tenant's and the ownership tags.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from domain.naming import TAG_TENANT_ID, ownership_tags
from tests.helpers import API_KEY, boto, unique_id, wait_status
from tests.integration.test_api import PREFIX, make_app
from tests.integration.test_tenant_settings_api import wait_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
TEMPLATE_TAGS = {"cost-center": "identity", "environment": "production"}


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("tag-updates")
    tiers = tmp / "tiers.toml"
    tiers.write_text(EXAMPLE.read_text())
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url, tiers_file=tiers)) as c:
        c.headers.update({"Authorization": f"Bearer {API_KEY}"})
        yield c


def owned_resources(endpoint: str, tenant_id: str) -> dict[str, dict[str, str]]:
    """Every resource of the tenant in the emulator, by kind and name, with its tags: found by
    the tenant's ownership tag, or by a name derived from the tenant id (so that a resource that
    lost its ownership tag is still listed)."""
    found: dict[str, dict[str, str]] = {}

    def mine(name: str, tags: dict[str, str], *heads: str) -> bool:
        return tags.get(TAG_TENANT_ID) == tenant_id or any(name.startswith(head) for head in heads)

    idp = boto("cognito-idp", endpoint)
    for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60):
        for summary in page["UserPools"]:
            pool = idp.describe_user_pool(UserPoolId=summary["Id"])["UserPool"]
            tags = dict(pool.get("UserPoolTags") or {})
            if mine(pool["Name"], tags, f"{PREFIX}-{tenant_id}"):
                # ListTagsForResource must agree with DescribeUserPool.
                assert idp.list_tags_for_resource(ResourceArn=pool["Arn"])["Tags"] == tags
                found[f"user pool {pool['Name']}"] = tags
    identity = boto("cognito-identity", endpoint)
    for page in identity.get_paginator("list_identity_pools").paginate(MaxResults=60):
        for summary in page["IdentityPools"]:
            pool = identity.describe_identity_pool(IdentityPoolId=summary["IdentityPoolId"])
            tags = dict(pool.get("IdentityPoolTags") or {})
            if mine(pool["IdentityPoolName"], tags, f"{PREFIX}-{tenant_id}"):
                found[f"identity pool {pool['IdentityPoolName']}"] = tags
    iam = boto("iam", endpoint)
    for page in iam.get_paginator("list_roles").paginate(PathPrefix="/tenants/"):
        for role in page["Roles"]:
            tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}
            if mine(role["RoleName"], tags, f"{PREFIX}-{tenant_id}-"):
                found[f"role {role['RoleName']}"] = tags
    sm = boto("secretsmanager", endpoint)
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            tags = {t["Key"]: t["Value"] for t in secret.get("Tags") or []}
            if mine(secret["Name"], tags, f"{PREFIX}/{tenant_id}/"):
                found[f"secret {secret['Name']}"] = tags
    return found


async def test_a_tag_patch_retags_every_resource_the_tenant_owns(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("tags")
    body = {
        "tenant_id": tenant_id,
        "tier": "enterprise",
        "display_name": "Acme",
        "tags": {"team": "alpha", "drop-me": "soon"},
        "identity_providers": {
            "acme-oidc": {
                "type": "OIDC",
                "issuer": "https://login.acme.example",
                "client_id": "acme-client",
                "client_secret": "oidc-secret-1",
                "scopes": ["openid", "email"],
            },
            "Google": {"type": "Google", "client_id": "g.apps", "client_secret": "google-secret-1", "scopes": ["openid"]},
        },
    }
    response = await client.post("/v1/tenants", json=body)
    assert response.status_code == 202, response.text
    tenant = await wait_status(client, tenant_id, {"active", "failed"}, timeout=60)
    assert tenant["status"] == "active", tenant

    before = owned_resources(emulator_endpoint, tenant_id)
    kinds = sorted(before)
    roles = [k for k in kinds if k.startswith("role ")]
    secrets = [k for k in kinds if k.startswith("secret ")]
    # Every kind is there: auth, unauth and the two extra roles; two app client secrets
    # (machine, mobile) and two identity-provider secrets.
    assert [k.split(" ")[0] for k in kinds].count("user") == 1 and sum(k.startswith("identity pool") for k in kinds) == 1
    assert len(roles) == 4, roles
    assert {r.rsplit("-", 1)[1] for r in roles} == {"auth", "unauth", "admins", "editors"}
    assert len(secrets) == 4, secrets
    assert sum("/idp/" in s for s in secrets) == 2 and sum("/app-client/" in s for s in secrets) == 2
    old = {**TEMPLATE_TAGS, "team": "alpha", "drop-me": "soon", **ownership_tags(tenant_id)}
    assert before == dict.fromkeys(kinds, old)

    # Add one, change one (and override a template tag), remove one.
    patch = {"tags": {"team": "beta", "drop-me": None, "added": "yes", "environment": "staging"}}
    response = await client.patch(
        f"/v1/tenants/{tenant_id}", content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 202, response.text
    tenant = await wait_settings(client, tenant_id, timeout=60)
    assert tenant["settings_status"] == "applied" and tenant["last_error"] is None, tenant

    new = {"cost-center": "identity", "environment": "staging", "team": "beta", "added": "yes", **ownership_tags(tenant_id)}
    after = owned_resources(emulator_endpoint, tenant_id)
    assert sorted(after) == kinds
    wrong = {kind: tags for kind, tags in after.items() if tags != new}
    assert wrong == {}, f"resources without exactly the new tags {new}: {wrong}"

    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 202
    assert (await wait_status(client, tenant_id, {"deleted"}, timeout=60))["status"] == "deleted"
    assert owned_resources(emulator_endpoint, tenant_id) == {}
