"""End to end (issue 6): `tenantctl serve` as a subprocess with a tier template of two app clients
(a web client with the code flow, a machine client with a secret and client credentials); a
client onboards a tenant that brings its own OIDC provider, checks the pool, the provider and the
clients in the emulator, changes the settings with PATCH, and tears the tenant down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_onboarding_e2e import registry_url, serving  # noqa: F401 (fixture)
from tests.helpers import API_KEY, boto, pools_named, unique_id
from tests.integration.test_tenant_settings_api import TIERS_TOML

pytestmark = pytest.mark.e2e
PREFIX = "e2eidp"
SECRET = "e2e-oidc-client-secret-5e1f"


@pytest.fixture(scope="module")
def sso_service(
    registry_url: str, emulator_endpoint: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("e2e-sso")
    (tmp / "tiers.toml").write_text(TIERS_TOML)
    with serving(tmp, registry_url, emulator_endpoint, PREFIX, TENANTS_TIERS_FILE=str(tmp / "tiers.toml")) as (url, log_path, _):
        yield url
    assert SECRET not in log_path.read_text(), "a provider's client secret reached the service log"


def test_tenant_with_its_own_oidc_provider_and_a_machine_client(sso_service: str, emulator_endpoint: str) -> None:
    tenant_id = unique_id("idp")
    oidc = {
        "type": "OIDC",
        "issuer": "https://login.e2e.example",
        "client_id": "e2e-portal",
        "client_secret": SECRET,
        "scopes": ["openid", "email", "profile"],
        "attribute_mapping": {"email": "email", "name": "name"},
    }
    body = {
        "tenant_id": tenant_id,
        "tier": "sso",
        "display_name": "E2E SSO",
        "callback_urls": ["https://portal.e2e.example/callback"],
        "logout_urls": ["https://portal.e2e.example/"],
        "tags": {"cost-center": "e2e"},
        "identity_providers": {"e2e-oidc": oidc},
    }
    with httpx.Client(base_url=sso_service, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:
        created = http.post("/v1/tenants", json=body, headers={"Prefer": "wait=30"})
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["status"] == "active", tenant
        assert SECRET not in created.text
        res = tenant["resources"]

        # The pool: the tenant's tags under the template's and the ownership tags.
        idp = boto("cognito-idp", emulator_endpoint)
        [pool] = pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}")
        described = idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
        assert described["Id"] == res["user_pool_id"]
        assert {"cost-center": "e2e", "tier": "sso", "tenants:tenant-id": tenant_id}.items() <= described["UserPoolTags"].items()

        # The provider, as the tenant sent it, with the secret Cognito got via Secrets Manager.
        provider = idp.describe_identity_provider(UserPoolId=pool["Id"], ProviderName="e2e-oidc")["IdentityProvider"]
        assert provider["ProviderType"] == "OIDC"
        assert provider["ProviderDetails"]["client_secret"] == SECRET
        assert provider["ProviderDetails"]["oidc_issuer"] == "https://login.e2e.example"
        assert provider["ProviderDetails"]["authorize_scopes"] == "openid email profile"
        assert provider["AttributeMapping"] == {"email": "email", "name": "name"}

        # The clients: the web client signs users in through the provider at the tenant's URLs;
        # the machine client has a secret and the client-credentials flow, and COGNITO only.
        listed = idp.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)["UserPoolClients"]
        clients = {
            c["ClientId"]: idp.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=c["ClientId"])["UserPoolClient"]
            for c in listed
        }
        assert len(clients) == 2
        web = clients[res["app_client_id"]]
        [machine] = [c for cid, c in clients.items() if cid != res["app_client_id"]]
        assert set(web["SupportedIdentityProviders"]) == {"COGNITO", "e2e-oidc"}
        assert web["CallbackURLs"] == ["https://portal.e2e.example/callback"]
        assert web["LogoutURLs"] == ["https://portal.e2e.example/"]
        assert web["AllowedOAuthFlows"] == ["code"] and "ClientSecret" not in web
        assert machine["AllowedOAuthFlows"] == ["client_credentials"] and machine["ClientSecret"]
        assert machine["AllowedOAuthScopes"] == ["api/read"]
        assert machine["SupportedIdentityProviders"] == ["COGNITO"]

        # The provider's secret is in Secrets Manager under the tenant's name, not in GET.
        sm = boto("secretsmanager", emulator_endpoint)
        shown = http.get(f"/v1/tenants/{tenant_id}").json()
        arn = shown["settings"]["identity_providers"]["e2e-oidc"]["client_secret_arn"]
        assert sm.get_secret_value(SecretId=arn)["SecretString"] == SECRET
        assert SECRET not in str(shown)

        # PATCH: the provider leaves, the web client stops listing it, the URLs change.
        patched = http.patch(
            f"/v1/tenants/{tenant_id}",
            json={"identity_providers": {"e2e-oidc": None}, "callback_urls": ["https://new.e2e.example/cb"]},
            headers={"Prefer": "wait=30"},
        )
        assert patched.status_code == 200 and patched.json()["settings_status"] == "applied", patched.text
        assert idp.list_identity_providers(UserPoolId=pool["Id"])["Providers"] == []
        web = idp.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=res["app_client_id"])["UserPoolClient"]
        assert web["SupportedIdentityProviders"] == ["COGNITO"] and web["CallbackURLs"] == ["https://new.e2e.example/cb"]
        with pytest.raises(sm.exceptions.ResourceNotFoundException):
            sm.describe_secret(SecretId=arn)

        deleted = http.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
        assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    left: list[dict[str, Any]] = sm.list_secrets(Filters=[{"Key": "name", "Values": [f"{PREFIX}/{tenant_id}/"]}])["SecretList"]
    assert left == []
