"""A tenant's own sign-in and settings, end to end over the fakes: onboarding with identity
providers (secrets in Secrets Manager only), idempotent POST with secrets, PATCH applied in place,
and teardown of the providers' secrets."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import CloudError, InvalidInput, TenantConflict, TenantNotFound
from domain.naming import ResourceNames, ownership_tags
from domain.provisioning import Gateways
from domain.sweep import SweepOrphans
from domain.tenant import JobKind, SettingsStatus, TenantSpec, TenantStatus
from domain.tenant_settings import parse_settings
from domain.tiers import parse_tiers
from tests.unit.fakes import CELL, World

NAMES = ResourceNames("tenants", "acme")
POLICY = [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:{{partition}}:s3:::data/{{tenant_id}}/*"]}]
TIERS = parse_tiers(
    {
        "tiers": {
            "sso": {
                "description": "a web client with the code flow and a machine client",
                "hosted_ui_domain": True,
                "tags": {"tier": "sso"},
                "authenticated_policy": POLICY,
                "resource_servers": [{"identifier": "api", "name": "API", "scopes": [{"name": "read", "description": "read"}]}],
                "app_clients": {
                    "web": {"oauth_flows": ["code"], "oauth_scopes": ["openid", "email"], "callback_urls": ["https://default.example/cb"]},
                    "machine": {"oauth_flows": ["client_credentials"], "generate_secret": True, "oauth_scopes": ["api/read"]},
                },
            },
            "plain": {"description": "no OAuth client", "authenticated_policy": POLICY},
        }
    }
)
OIDC = {
    "type": "OIDC",
    "issuer": "https://login.acme.example",
    "client_id": "acme-client",
    "client_secret": "oidc-secret-1",
    "scopes": ["openid", "email"],
    "attribute_mapping": {"email": "email"},
}
GOOGLE = {"type": "Google", "client_id": "g-id", "client_secret": "google-secret-1", "scopes": ["openid", "email"]}
SETTINGS = {
    "callback_urls": ["https://app.acme.example/cb"],
    "logout_urls": ["https://app.acme.example/bye"],
    "tags": {"cost-center": "cc-1"},
    "identity_providers": {"acme-oidc": OIDC, "Google": GOOGLE},
}


def request(settings: dict[str, Any] = SETTINGS, tier: str = "sso") -> tuple[TenantSpec, dict[str, str]]:
    parsed = parse_settings(settings)
    return TenantSpec("acme", tier, "Acme", settings=parsed.settings), parsed.secrets


async def onboarded(world: World) -> None:
    spec, secrets = request()
    await world.onboard(spec, secrets)
    assert await world.provision("acme") == TenantStatus.ACTIVE


def pool(world: World) -> Any:
    [found] = world.cloud.pools_named(NAMES.user_pool)
    return found


def clients(world: World) -> dict[str, dict[str, Any]]:
    return {c["template_client"]: c for c in pool(world).clients.values()}


async def test_onboarding_puts_providers_on_the_pool_with_secrets_only_in_secrets_manager() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    tenant = world.registry.tenant("acme")
    assert tenant is not None
    # The registry holds where the secrets are, never the secrets.
    assert "secret-1" not in repr(tenant) and "secret-1" not in repr(tenant.spec.settings.public())
    oidc = tenant.spec.settings.provider("acme-oidc")
    assert oidc is not None and oidc.client_secret_arn is not None
    secret = world.cloud.secret_named(NAMES.identity_provider_secret("acme-oidc"))
    assert secret is not None and secret.value == "oidc-secret-1" and secret.arn == oidc.client_secret_arn
    assert secret.tags == {"tier": "sso", "cost-center": "cc-1", **ownership_tags("acme")}
    # The step read the secret back from Secrets Manager for CreateIdentityProvider.
    providers = pool(world).identity_providers
    assert providers["acme-oidc"]["details"]["client_secret"] == "oidc-secret-1"
    assert providers["acme-oidc"]["details"]["oidc_issuer"] == "https://login.acme.example"
    assert providers["Google"]["type"] == "Google" and providers["Google"]["details"]["client_secret"] == "google-secret-1"
    web, machine = clients(world)["web"], clients(world)["machine"]
    assert web["identity_providers"] == ("COGNITO", "Google", "acme-oidc")
    assert web["callback_urls"] == ("https://app.acme.example/cb",)
    assert machine["identity_providers"] == ("COGNITO",)  # a machine client signs no users in
    assert pool(world).tags == {"tier": "sso", "cost-center": "cc-1", **ownership_tags("acme")}
    # Providers go on before any client lists them.
    methods = world.cloud.methods_called()
    assert methods.index("put_identity_provider") < methods.index("create_app_client")


async def test_the_same_request_again_is_the_same_tenant_and_a_different_secret_is_a_conflict() -> None:
    world = World(tiers=dict(TIERS))
    spec, secrets = request()
    first = await world.onboard(spec, secrets)
    again = await world.onboard(*request())
    assert first.changed and not again.changed
    assert len([s for s in world.cloud.secrets.values() if "/idp/" in s.name]) == 2
    with pytest.raises(TenantConflict):
        await world.onboard(spec, {**secrets, "Google": "another-secret"})
    with pytest.raises(TenantConflict):
        await world.onboard(*request({**SETTINGS, "tags": {"cost-center": "cc-2"}}))
    # Neither refused request touched the stored secret.
    stored = world.cloud.secret_named(NAMES.identity_provider_secret("Google"))
    assert stored is not None and stored.value == "google-secret-1"


async def test_settings_that_the_tier_cannot_use_are_refused() -> None:
    world = World(tiers=dict(TIERS))
    with pytest.raises(InvalidInput) as caught:
        await world.onboard(*request({"callback_urls": ["https://a.example/cb"]}, tier="plain"))
    assert caught.value.field == "callback_urls"
    with pytest.raises(InvalidInput) as caught:
        await world.onboard(*request({"tags": {f"k{i}": "v" for i in range(48)}}))  # 48 + tier's 1 + 2 > 50
    assert caught.value.field == "tags"
    assert world.registry.tenant("acme") is None and not world.cloud.secrets


async def test_patch_changes_urls_providers_and_tags_in_place() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    outcome = await world.update(
        "acme",
        {
            "display_name": "Acme Corp",
            "callback_urls": ["https://new.acme.example/cb"],
            "tags": {"cost-center": None, "team": "idp"},
            "identity_providers": {"Google": None, "acme-oidc": {"client_secret": "oidc-secret-2", "scopes": ["openid"]}},
        },
    )
    assert outcome.changed and outcome.tenant.status == TenantStatus.ACTIVE
    assert outcome.tenant.settings_status == SettingsStatus.PENDING
    assert [j.kind for j in world.registry.jobs_of("acme")][-1] == JobKind.UPDATE
    with pytest.raises(TenantConflict):  # one change at a time
        await world.update("acme", {})
    assert await world.apply_settings("acme") == SettingsStatus.APPLIED

    tenant = world.registry.tenant("acme")
    assert tenant is not None and tenant.settings_status == SettingsStatus.APPLIED and tenant.spec.display_name == "Acme Corp"
    providers = pool(world).identity_providers
    assert set(providers) == {"acme-oidc"}
    assert providers["acme-oidc"]["details"]["client_secret"] == "oidc-secret-2"
    assert providers["acme-oidc"]["details"]["authorize_scopes"] == "openid"
    assert world.cloud.secret_named(NAMES.identity_provider_secret("Google")) is None  # removed with its provider
    web = clients(world)["web"]
    assert web["identity_providers"] == ("COGNITO", "acme-oidc")
    assert web["callback_urls"] == ("https://new.acme.example/cb",)
    wanted = {"tier": "sso", "team": "idp", **ownership_tags("acme")}
    assert pool(world).tags == wanted
    assert [p.tags for p in world.cloud.identity_pools_named(NAMES.identity_pool)] == [wanted]
    assert world.cloud.role(NAMES.role("auth")).tags == wanted  # type: ignore[union-attr]
    assert all(s.tags == wanted for s in world.cloud.secrets.values())
    assert pool(world).display_name == "Acme Corp"
    assert ["tenant.settings_applied"] == [e.action for e in world.registry.events_of("acme") if e.action.startswith("tenant.settings")]
    # Providers are removed only after the clients stopped listing them.
    methods = world.cloud.methods_called()
    assert methods.index("update_app_client") < methods.index("delete_identity_provider")


async def test_patch_refusals() -> None:
    world = World(tiers=dict(TIERS))
    with pytest.raises(TenantNotFound):
        await world.update("acme", {})
    spec, secrets = request()
    await world.onboard(spec, secrets)
    with pytest.raises(TenantConflict) as conflict:  # still provisioning
        await world.update("acme", {"tags": {"a": "b"}})
    assert conflict.value.status == "provisioning"
    await world.provision("acme")
    for patch, field in [
        ({"tier": "plain"}, "tier"),
        ({"display_name": None}, "display_name"),
        ({"callback_urls": ["http://insecure.example/cb"]}, "callback_urls[0]"),
        ({"identity_providers": {"acme-oidc": {"type": "SAML"}}}, "identity_providers.acme-oidc.type"),
        ({"identity_providers": {"acme-oidc": {"issuer": None}}}, "identity_providers.acme-oidc.issuer"),
        ({"tags": {"aws:x": "1"}}, "tags.aws:x"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            await world.update("acme", patch)
        assert caught.value.field == field, patch
    tenant = world.registry.tenant("acme")
    assert tenant is not None and tenant.settings_status == SettingsStatus.APPLIED
    assert [j.kind for j in world.registry.jobs_of("acme")] == [JobKind.PROVISION]


async def test_a_failed_change_is_recorded_and_an_empty_patch_applies_it_again() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    await world.update("acme", {"identity_providers": {"acme-oidc": {"client_id": "new-client"}}})
    world.cloud.fail("update_app_client", CloudError("InvalidParameterException", "nope"))
    assert await world.apply_settings("acme") == SettingsStatus.FAILED
    tenant = world.registry.tenant("acme")
    assert tenant is not None and tenant.status == TenantStatus.ACTIVE
    assert tenant.last_error is not None and tenant.last_error.step == "update_app_clients"
    await world.update("acme", {})
    assert await world.apply_settings("acme") == SettingsStatus.APPLIED
    assert pool(world).identity_providers["acme-oidc"]["details"]["client_id"] == "new-client"
    assert world.registry.tenant("acme").last_error is None  # type: ignore[union-attr]


async def test_a_lost_create_response_is_adopted_on_the_next_attempt() -> None:
    world = World(tiers=dict(TIERS))
    spec, secrets = request()
    await world.onboard(spec, secrets)
    world.cloud.lose_response("put_identity_provider")
    assert await world.provision("acme") == TenantStatus.FAILED  # one attempt per step in World
    tenant = world.registry.tenant("acme")
    assert tenant is not None and tenant.last_error is not None and tenant.last_error.step == "identity_providers"
    await world.retry("acme")
    assert await world.provision("acme") == TenantStatus.ACTIVE
    assert set(pool(world).identity_providers) == {"Google", "acme-oidc"}
    assert any(c.kwargs.get("exists") for c in world.cloud.calls_to("put_identity_provider"))  # updated, not created twice


async def test_teardown_deletes_the_provider_secrets_even_one_never_recorded() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    # A PATCH that stored a new provider's secret and then crashed before its transaction.
    world.cloud.seed_secret(NAMES.identity_provider_secret("Facebook"), "orphan", tags=ownership_tags("acme"))
    foreign = world.cloud.seed_secret("tenants/acme/idp/Other/secret", "not ours", tags={"owner": "someone"})
    await world.delete("acme")
    assert await world.deprovision("acme") == TenantStatus.DELETED
    left = {s.name for s in world.cloud.secrets.values()}
    assert NAMES.identity_provider_secret("acme-oidc") not in left and NAMES.identity_provider_secret("Google") not in left
    assert foreign.name in left  # never touched: not ours
    # The orphan of the crashed PATCH is in no setting, but under the tenant's names and tags: gone too.
    assert NAMES.identity_provider_secret("Facebook") not in left


async def test_the_orphan_sweep_keeps_the_providers_secrets_and_finds_a_stray_one() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    stray = world.cloud.seed_secret(NAMES.identity_provider_secret("Facebook"), "left by a crash", tags=ownership_tags("acme"))
    sweep = SweepOrphans(
        Gateways(user_pools=world.cloud, identity_pools=world.cloud, iam=world.cloud, secrets=world.cloud),
        world.registry,
        CELL,
        world.settings,
    )
    report = await sweep(apply=True)
    by_name = {e.name: e for e in report.entries}
    assert set(by_name) == {stray.name}, by_name
    assert world.cloud.secret_named(stray.name) is None
    assert world.cloud.secret_named(NAMES.identity_provider_secret("acme-oidc")) is not None


async def test_a_removed_providers_secret_goes_even_when_the_provider_went_first() -> None:
    world = World(tiers=dict(TIERS))
    await onboarded(world)
    await world.update("acme", {"identity_providers": {"Google": None}})
    # The provider is deleted, then the run dies before its secret is (here: the delete fails).
    world.cloud.fail("delete_secret", CloudError("InternalErrorException", "boom"))
    assert await world.apply_settings("acme") == SettingsStatus.FAILED
    assert "Google" not in pool(world).identity_providers
    assert world.cloud.secret_named(NAMES.identity_provider_secret("Google")) is not None
    await world.update("acme", {})
    assert await world.apply_settings("acme") == SettingsStatus.APPLIED
    assert world.cloud.secret_named(NAMES.identity_provider_secret("Google")) is None
    tenant = world.registry.tenant("acme")
    assert tenant is not None and "removed_identity_providers" not in tenant.outputs
