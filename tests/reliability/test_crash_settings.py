"""Crash safety of a tenant's own identity providers and of PATCH, with real kills.

A `tenantctl serve` process SIGKILLs itself right after AWS created a provider (before the
registry knows), at the provider step's boundary, and in the middle of applying a PATCH; a fresh
process takes the job over. The tenant must end with each provider exactly once in its pool, its
secrets in Secrets Manager exactly as the registry records them, and the change applied.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import boto
from tests.reliability.conftest import FIGURES
from tests.reliability.harness import PREFIX, Emulator, Service, wait_until
from tests.reliability.inventory import owned_inventory

pytestmark = pytest.mark.crash

OIDC = {
    "type": "OIDC",
    "issuer": "https://login.crash.example",
    "client_id": "crash",
    "client_secret": "crash-secret-1",
    "scopes": ["openid", "email"],
}
GOOGLE = {"type": "Google", "client_id": "g", "client_secret": "crash-google", "scopes": ["email"]}
BODY = {"tier": "basic", "display_name": "Crash SSO", "tags": {"team": "a"}, "identity_providers": {"crash-oidc": OIDC}}
PATCH = {"tags": {"team": None, "env": "b"}, "identity_providers": {"crash-oidc": None, "Google": GOOGLE}}


def _get(service: Service, tenant_id: str, done: Any, what: str) -> dict[str, Any]:
    with service.client() as http:
        return wait_until(lambda: (t := http.get(f"/v1/tenants/{tenant_id}").json()) and done(t) and t, 60, what, 0.1)


def _check(endpoint: str, tenant: dict[str, Any], providers: set[str], tags: dict[str, str]) -> None:
    pool_id = tenant["resources"]["user_pool_id"]
    idp = boto("cognito-idp", endpoint)
    assert {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]} == providers
    client = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=tenant["resources"]["app_client_id"])["UserPoolClient"]
    assert set(client["SupportedIdentityProviders"]) == {"COGNITO", *providers}
    recorded = {p["client_secret_arn"] for p in tenant["settings"]["identity_providers"].values()}
    owned = owned_inventory(endpoint)[tenant["tenant_id"]]
    assert sorted(owned.secrets) == sorted(recorded), (owned, tenant["settings"])  # no orphan, no duplicate
    pool_tags = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTags"]
    assert {k: v for k, v in pool_tags.items() if not k.startswith("tenants:")} == tags


@pytest.mark.parametrize("point", ["after-call:CreateIdentityProvider", "after-call:CreateSecret"])
def test_provisioning_with_a_provider_survives_a_kill(
    point: str, standalone_emulator: Emulator, registry_url: str, workdir: Path
) -> None:
    tenant_id = f"crsso-{uuid.uuid4().hex[:10]}"
    doomed = Service(registry_url, standalone_emulator.url, workdir, crash_at=point).start()
    try:
        with doomed.client() as http:
            # CreateSecret is the API handler's own call: the kill comes before the answer.
            try:
                assert http.post("/v1/tenants", json={"tenant_id": tenant_id, **BODY}).status_code == 202
            except httpx.HTTPError:
                assert point == "after-call:CreateSecret"
        assert doomed.wait_killed() == point
    finally:
        doomed.stop()

    heir = Service(registry_url, standalone_emulator.url, workdir).start()
    try:
        if point == "after-call:CreateSecret":
            # The client never got an answer and sends the same request again: the secret is adopted.
            with heir.client() as http:
                assert http.post("/v1/tenants", json={"tenant_id": tenant_id, **BODY}).status_code == 202
        tenant = _get(heir, tenant_id, lambda t: t.get("status") in {"active", "failed"}, "provisioning to end")
        assert tenant["status"] == "active", tenant
        _check(standalone_emulator.url, tenant, {"crash-oidc"}, {"team": "a"})
        assert tenant["settings"]["identity_providers"]["crash-oidc"]["client_secret_arn"].split(":secret:")[1].startswith(
            f"{PREFIX}/{tenant_id}/idp/crash-oidc/secret"
        )
        FIGURES["crash points killed at (identity providers)"] = FIGURES.get("crash points killed at (identity providers)", 0) + 1
    finally:
        heir.stop()


@pytest.mark.parametrize(
    "point", ["after-call:UpdateUserPoolClient", "after-call:DeleteIdentityProvider", "step:update_tags"]
)
def test_a_patch_survives_a_kill(point: str, standalone_emulator: Emulator, registry_url: str, workdir: Path) -> None:
    tenant_id = f"crpat-{uuid.uuid4().hex[:10]}"
    doomed = Service(registry_url, standalone_emulator.url, workdir, crash_at=point).start()
    try:
        with doomed.client() as http:
            created = http.post("/v1/tenants", json={"tenant_id": tenant_id, **BODY}, headers={"Prefer": "wait=30"})
            assert created.status_code == 201 and created.json()["status"] == "active", created.text
            assert http.patch(f"/v1/tenants/{tenant_id}", json=PATCH).status_code == 202
        assert doomed.wait_killed() == point
    finally:
        doomed.stop()

    heir = Service(registry_url, standalone_emulator.url, workdir).start()
    try:
        tenant = _get(heir, tenant_id, lambda t: t.get("settings_status") != "pending", "the change to be applied")
        assert tenant["status"] == "active" and tenant["settings_status"] == "applied", tenant
        _check(standalone_emulator.url, tenant, {"Google"}, {"env": "b"})
        FIGURES["crash points killed at (PATCH)"] = FIGURES.get("crash points killed at (PATCH)", 0) + 1
    finally:
        heir.stop()
