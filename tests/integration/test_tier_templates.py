"""Tier templates over the emulator: a tenant of each shipped tier and of the example template
that uses every field (docs/examples/tiers-full.toml) is provisioned through the API, then
everything is described in the emulator and compared with the template; DELETE leaves nothing.

Every request goes through the botocore-model hook (aws_strict_params), so each field the
templates set is also checked against the real API's patterns, lengths and enums.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from domain.naming import ResourceNames
from domain.provisioning import admin_username
from domain.tiers import TierTemplate
from service.tiers_file import load_tiers
from tests.helpers import API_KEY, boto, identity_pools_named, pools_named, roles_with_prefix, unique_id
from tests.integration.test_api import PREFIX, make_app

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "service" / "tiers.toml"
EXAMPLE = ROOT / "docs" / "examples" / "tiers-full.toml"

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def tiers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiers") / "tiers.toml"
    path.write_text(SHIPPED.read_text() + "\n" + EXAMPLE.read_text())
    return path


@pytest.fixture(scope="module")
def tiers(tiers_file: Path) -> dict[str, TierTemplate]:
    return load_tiers(tiers_file)


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str, tiers_file: Path) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("tpl-api")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url, tiers_file=tiers_file)) as c:
        c.headers.update(AUTH)
        yield c


async def provision(client: Any, tier: str, display_name: str = "Acme Corp") -> dict[str, Any]:
    tenant_id = unique_id(tier[:4])
    body = {"tenant_id": tenant_id, "tier": tier, "display_name": display_name, "admin_email": f"boss@{tenant_id}.example"}
    response = await client.post("/v1/tenants", json=body, headers={"Prefer": "wait=60"})
    tenant = response.json()
    assert response.status_code == 201, tenant
    assert tenant["status"] == "active", tenant
    return tenant


async def delete_and_check_nothing_left(client: Any, endpoint: str, tenant: dict[str, Any]) -> None:
    tenant_id = tenant["tenant_id"]
    names = ResourceNames(PREFIX, tenant_id)
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=60"})
    assert deleted.json()["status"] == "deleted", deleted.json()
    assert pools_named(endpoint, names.user_pool) == []
    assert identity_pools_named(endpoint, names.identity_pool) == []
    assert roles_with_prefix(endpoint, f"{PREFIX}-{tenant_id}") == []
    secrets = boto("secretsmanager", endpoint).list_secrets(Filters=[{"Key": "name", "Values": [f"{PREFIX}/{tenant_id}/"]}])
    assert secrets["SecretList"] == []


def describe_pool(endpoint: str, pool_id: str) -> dict[str, Any]:
    return boto("cognito-idp", endpoint).describe_user_pool(UserPoolId=pool_id)["UserPool"]


def describe_clients(endpoint: str, pool_id: str, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    idp = boto("cognito-idp", endpoint)
    return {name: idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=cid)["UserPoolClient"] for name, cid in ids.items()}


@pytest.mark.parametrize("tier", ["basic", "standard", "premium"])
async def test_each_shipped_tier_provisions_what_its_template_says(
    client: Any, emulator_endpoint: str, tiers: dict[str, TierTemplate], tier: str
) -> None:
    template = tiers[tier]
    tenant = await provision(client, tier)
    resources = tenant["resources"]
    pool = describe_pool(emulator_endpoint, resources["user_pool_id"])

    assert pool["UserPoolTier"] == template.feature_plan
    assert pool["MfaConfiguration"] == template.mfa
    custom = {a["Name"]: a for a in pool["SchemaAttributes"] if a["Name"].startswith("custom:")}
    assert custom["custom:tenant_id"]["Mutable"] is False  # every pool, every tier
    assert pool["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Priority": 1, "Name": "verified_email"}]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    if template.invitation.email_subject is not None:  # standard and premium: the name filled in
        assert pool["AdminCreateUserConfig"]["InviteMessageTemplate"]["EmailSubject"] == "Your Acme Corp account"
    link = template.verification.email_method == "link"
    assert pool["VerificationMessageTemplate"]["DefaultEmailOption"] == ("CONFIRM_WITH_LINK" if link else "CONFIRM_WITH_CODE")
    if template.device_remembering == "user_opt_in":  # premium
        assert pool["DeviceConfiguration"] == {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True}
    assert resources["app_clients"] == {"default": resources["app_client_id"]}  # the single [app_client] form
    [app] = describe_clients(emulator_endpoint, resources["user_pool_id"], resources["app_clients"]).values()
    assert app["ExplicitAuthFlows"] == list(template.app_client.explicit_auth_flows)
    assert app["AccessTokenValidity"] == template.tokens.access_token_minutes
    assert ("ClientSecret" in app) is template.app_client.generate_secret
    assert (resources["app_client_secret_arns"] is not None) is template.app_client.generate_secret

    idp = boto("cognito-idp", emulator_endpoint)
    admin = idp.admin_get_user(UserPoolId=resources["user_pool_id"], Username=admin_username(template, tenant["admin_email"]))
    assert {"Name": "custom:tenant_id", "Value": tenant["tenant_id"]} in admin["UserAttributes"]

    await delete_and_check_nothing_left(client, emulator_endpoint, tenant)


async def test_the_full_example_template_provisions_every_field(
    client: Any, emulator_endpoint: str, tiers: dict[str, TierTemplate]
) -> None:
    template = tiers["enterprise"]
    tenant = await provision(client, "enterprise", display_name="Acme Corp")
    tenant_id, resources = tenant["tenant_id"], tenant["resources"]
    names = ResourceNames(PREFIX, tenant_id)
    pool_id = resources["user_pool_id"]
    idp = boto("cognito-idp", emulator_endpoint)
    pool = describe_pool(emulator_endpoint, pool_id)

    # Sign-in and attributes.
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AutoVerifiedAttributes"] == ["email", "phone_number"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    schema = {a["Name"]: a for a in pool["SchemaAttributes"]}
    assert schema["email"]["Required"] is True and schema["name"]["Required"] is True
    assert schema["custom:tenant_id"]["Mutable"] is False
    assert schema["custom:tenant_id"]["StringAttributeConstraints"] == {"MinLength": "3", "MaxLength": "40"}
    assert schema["custom:department"]["StringAttributeConstraints"] == {"MinLength": "1", "MaxLength": "64"}
    assert schema["custom:seats"]["AttributeDataType"] == "Number"
    assert schema["custom:seats"]["NumberAttributeConstraints"] == {"MinValue": "1", "MaxValue": "10000"}
    assert schema["custom:hired_on"]["AttributeDataType"] == "DateTime"
    assert schema["custom:is_contractor"]["AttributeDataType"] == "Boolean"
    assert schema["custom:is_contractor"]["Mutable"] is False

    # Security.
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert pool["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 3
    assert pool["AccountRecoverySetting"]["RecoveryMechanisms"] == [
        {"Priority": 1, "Name": "verified_email"},
        {"Priority": 2, "Name": "verified_phone_number"},
    ]
    assert pool["DeviceConfiguration"] == {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True}
    assert pool["DeletionProtection"] == "ACTIVE"
    mfa = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert mfa["MfaConfiguration"] == "OPTIONAL"
    assert mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    assert mfa["SmsMfaConfiguration"]["SmsConfiguration"]["SnsCallerArn"] == template.sms.sns_caller_arn  # type: ignore[union-attr]
    assert mfa["SmsMfaConfiguration"]["SmsAuthenticationMessage"] == "Your Acme Corp sign-in code is {####}"

    # Messages, with the tenant's display name filled in, and the senders.
    verification = pool["VerificationMessageTemplate"]
    assert verification["DefaultEmailOption"] == "CONFIRM_WITH_LINK"
    assert verification["EmailSubjectByLink"] == "Confirm your email address for Acme Corp"
    assert verification["EmailMessageByLink"] == "Welcome to Acme Corp. {##Confirm your email address##}"
    assert verification["SmsMessage"] == "Your Acme Corp verification code is {####}"
    invite = pool["AdminCreateUserConfig"]["InviteMessageTemplate"]
    assert invite["EmailSubject"] == "Your Acme Corp account"
    assert "{username}" in invite["EmailMessage"] and "Acme Corp" in invite["EmailMessage"]
    assert pool["EmailConfiguration"] == {
        "EmailSendingAccount": "DEVELOPER",
        "SourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "From": "Example Sign-in <no-reply@example.com>",
        "ReplyToEmailAddress": "support@example.com",
        "ConfigurationSet": "tenant-mail",
    }
    assert pool["SmsConfiguration"] == {
        "SnsCallerArn": "arn:aws:iam::123456789012:role/service-role/CognitoSnsCaller",
        "ExternalId": "tenant-provisioner",
        "SnsRegion": "us-east-1",
    }
    triggers = pool["LambdaConfig"]
    assert triggers["PreSignUp"].endswith(":function:tenant-pre-sign-up")
    assert triggers["UserMigration"].endswith(":function:tenant-user-migration")
    assert triggers["PreTokenGenerationConfig"] == {
        "LambdaVersion": "V2_0",
        "LambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:tenant-pre-token:live",
    }
    assert triggers["CustomEmailSender"]["LambdaVersion"] == "V1_0"
    assert triggers["KMSKeyID"] == template.lambda_triggers.kms_key_id

    # Tags: the template's, under the ownership tags.
    assert pool["UserPoolTags"]["cost-center"] == "identity"
    assert pool["UserPoolTags"]["tenants:tenant-id"] == tenant_id

    # Resource server and app clients.
    server = idp.describe_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com")["ResourceServer"]
    assert {s["ScopeName"] for s in server["Scopes"]} == {"read", "write"}
    ids = resources["app_clients"]
    assert list(ids) == ["web", "machine", "mobile"] and ids["web"] == resources["app_client_id"]
    clients = describe_clients(emulator_endpoint, pool_id, ids)
    web, machine, mobile = clients["web"], clients["machine"], clients["mobile"]
    assert web["ClientName"] == names.app_client and machine["ClientName"] == f"{names.app_client}-machine"
    assert web["AllowedOAuthFlows"] == ["code"] and web["AllowedOAuthFlowsUserPoolClient"] is True
    assert web["AllowedOAuthScopes"] == ["openid", "email", "profile", "https://api.example.com/read"]
    assert web["CallbackURLs"] == ["https://app.example.com/callback", "http://localhost:3000/callback"]
    assert web["LogoutURLs"] == ["https://app.example.com/signed-out"]
    assert web["DefaultRedirectURI"] == "https://app.example.com/callback"
    assert "ClientSecret" not in web
    assert machine["AllowedOAuthFlows"] == ["client_credentials"] and "ClientSecret" in machine
    assert machine["AccessTokenValidity"] == 60 and web["AccessTokenValidity"] == 30
    assert machine["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert "ALLOW_CUSTOM_AUTH" in mobile["ExplicitAuthFlows"]

    # One secret per confidential client, each holding that client's secret.
    sm = boto("secretsmanager", emulator_endpoint)
    arns = resources["app_client_secret_arns"]
    assert set(arns) == {"machine", "mobile"} and resources["app_client_secret_arn"] is None
    for name, arn in arns.items():
        assert sm.get_secret_value(SecretId=arn)["SecretString"] == clients[name]["ClientSecret"]
        tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=arn)["Tags"]}
        assert tags["tenants:tenant-id"] == tenant_id and tags["environment"] == "production"
    assert sm.describe_secret(SecretId=arns["machine"])["Name"] == f"{PREFIX}/{tenant_id}/app-client/machine/secret"

    # Groups with their roles; the identity pool trusts web (not machine, not mobile) and Google.
    iam = boto("iam", emulator_endpoint)
    admins_role = iam.get_role(RoleName=names.extra_role("admins"))["Role"]
    editors_role = iam.get_role(RoleName=names.extra_role("editors"))["Role"]
    assert idp.get_group(UserPoolId=pool_id, GroupName="admins")["Group"]["RoleArn"] == admins_role["Arn"]
    role_tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=editors_role["RoleName"])["Tags"]}
    assert role_tags["cost-center"] == "identity" and role_tags["tenants:tenant-id"] == tenant_id
    assert iam.list_role_policies(RoleName=editors_role["RoleName"])["PolicyNames"] == [names.extra_role_policy("editors")]
    identity = boto("cognito-identity", emulator_endpoint)
    ipool = identity.describe_identity_pool(IdentityPoolId=resources["identity_pool_id"])
    provider = f"cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    assert [(p["ProviderName"], p["ClientId"]) for p in ipool["CognitoIdentityProviders"]] == [(provider, ids["web"])]
    assert ipool["SupportedLoginProviders"] == {"accounts.google.com": "123456789012-example.apps.googleusercontent.com"}
    assert ipool["AllowUnauthenticatedIdentities"] is True
    assert ipool["IdentityPoolTags"]["environment"] == "production"
    roles = identity.get_identity_pool_roles(IdentityPoolId=resources["identity_pool_id"])
    assert roles["Roles"] == {
        "authenticated": resources["authenticated_role_arn"],
        "unauthenticated": resources["unauthenticated_role_arn"],
    }
    assert roles["RoleMappings"] == {
        f"{provider}:{ids['web']}": {
            "Type": "Rules",
            "AmbiguousRoleResolution": "AuthenticatedRole",
            "RulesConfiguration": {
                "Rules": [
                    {"Claim": "cognito:groups", "MatchType": "Contains", "Value": "admins", "RoleARN": admins_role["Arn"]},
                    {"Claim": "cognito:groups", "MatchType": "Contains", "Value": "editors", "RoleARN": editors_role["Arn"]},
                ]
            },
        }
    }

    # The admin user carries the tenant's id, which nobody can change afterwards.
    admin = idp.admin_get_user(UserPoolId=pool_id, Username=tenant["admin_email"])
    assert {"Name": "custom:tenant_id", "Value": tenant_id} in admin["UserAttributes"]

    await delete_and_check_nothing_left(client, emulator_endpoint, tenant)
    with contextlib.suppress(ClientError):
        iam.get_role(RoleName=names.extra_role("admins"))
        raise AssertionError("the admins role outlived its tenant")


async def test_get_tiers_shows_what_the_full_template_provisions(client: Any) -> None:
    tiers = {t["name"]: t["settings"] for t in (await client.get("/v1/tiers")).json()}
    full = tiers["enterprise"]
    assert full["primary_app_client"] == "web"
    assert set(full["app_clients"]) == {"web", "machine", "mobile"}
    assert full["app_clients"]["machine"]["oauth_flows"] == ["client_credentials"]
    assert full["resource_servers"][0]["identifier"] == "https://api.example.com"
    assert full["custom_attributes"][0] == {
        "name": "tenant_id", "type": "String", "mutable": False, "min_length": 3, "max_length": 40,
        "min_value": None, "max_value": None,
    }
    assert full["identity_pool"]["role_mapping"]["type"] == "Rules"
    assert set(full["roles"]) == {"admins", "editors"}
    assert full["lambda_triggers"]["pre_token_generation_version"] == "V2_0"
    assert full["tags"] == {"cost-center": "identity", "environment": "production"}
    # The single [app_client] form shows as one client named "default".
    assert list(tiers["basic"]["app_clients"]) == ["default"]


# -- what the emulator adds to moto for these requests ----------------------------------------------


def test_the_emulator_refuses_a_client_with_a_scope_no_resource_server_has(emulator_endpoint: str) -> None:
    idp = boto("cognito-idp", emulator_endpoint)
    pool_id = idp.create_user_pool(PoolName=unique_id("scopes"))["UserPool"]["Id"]
    client = {
        "UserPoolId": pool_id,
        "ClientName": "machine",
        "GenerateSecret": True,
        "AllowedOAuthFlows": ["client_credentials"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": ["https://api.example.com/read"],
    }
    with pytest.raises(ClientError) as refused:
        idp.create_user_pool_client(**client)
    assert refused.value.response["Error"]["Code"] == "ScopeDoesNotExistException"
    idp.create_resource_server(
        UserPoolId=pool_id, Identifier="https://api.example.com", Name="API", Scopes=[{"ScopeName": "read", "ScopeDescription": "r"}]
    )
    assert idp.create_user_pool_client(**client)["UserPoolClient"]["AllowedOAuthScopes"] == ["https://api.example.com/read"]
    idp.delete_user_pool(UserPoolId=pool_id)


def test_the_emulator_reports_the_mfa_setting_of_set_user_pool_mfa_config(emulator_endpoint: str) -> None:
    idp = boto("cognito-idp", emulator_endpoint)
    pool_id = idp.create_user_pool(PoolName=unique_id("mfa"))["UserPool"]["Id"]
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["MfaConfiguration"] == "OFF"
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="ON")
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["MfaConfiguration"] == "ON"
    idp.delete_user_pool(UserPoolId=pool_id)
