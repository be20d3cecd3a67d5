"""Teardown deletes every identity-provider secret of the tenant, also those its current settings no
longer name (a PATCH whose prune failed, a request that crashed after storing a secret), found
under the tenant's own ``<prefix>/<tenant_id>/idp/`` names and ownership tags; never another
tenant's (``acme`` vs ``acme-corp``) nor a secret without the tags. On the fakes."""

from __future__ import annotations

from domain.errors import CloudError
from domain.naming import ResourceNames, ownership_tags
from domain.tenant import SettingsStatus, TenantSpec, TenantStatus
from domain.tenant_settings import parse_settings
from tests.unit.fakes import World

ACME = ResourceNames("tenants", "acme")
ACME_CORP = ResourceNames("tenants", "acme-corp")
OIDC = {
    "type": "OIDC",
    "issuer": "https://login.acme.example",
    "client_id": "acme-client",
    "client_secret": "oidc-secret-1",
    "scopes": ["openid", "email"],
}


async def premium_with_oidc(world: World, tenant_id: str) -> None:
    parsed = parse_settings({"identity_providers": {"acme-oidc": OIDC}})
    await world.onboard(TenantSpec(tenant_id, "premium", "Acme", settings=parsed.settings), parsed.secrets)
    assert await world.provision(tenant_id) == TenantStatus.ACTIVE


async def teardown(world: World, tenant_id: str) -> dict[str, str]:
    before = len(world.registry.events_of(tenant_id))
    await world.delete(tenant_id)
    assert await world.deprovision(tenant_id) == TenantStatus.DELETED
    return {
        e.action.removeprefix("step."): e.outcome
        for e in world.registry.events_of(tenant_id)[before:]
        if e.action.startswith("step.")
    }


def secret_names(world: World) -> set[str]:
    return {s.name for s in world.cloud.secrets.values()}


async def test_a_removed_providers_secret_left_by_a_failed_prune_goes_with_the_tenant() -> None:
    world = World()
    await premium_with_oidc(world, "acme")
    await premium_with_oidc(world, "acme-corp")
    # The PATCH removes the only provider; its job dies on the secret's delete.
    await world.update("acme", {"identity_providers": {"acme-oidc": None}})
    world.cloud.fail("delete_secret", CloudError("AccessDeniedException", "denied"))
    assert await world.apply_settings("acme") == SettingsStatus.FAILED
    assert ACME.identity_provider_secret("acme-oidc") in secret_names(world)

    outcomes = await teardown(world, "acme")
    left = secret_names(world)
    assert not {name for name in left if name.startswith("tenants/acme/")}, left
    # Something was deleted: the step is done, not "skipped" (the settings name no provider now).
    assert outcomes["delete_identity_provider_secrets"] == "ok"
    # acme-corp, whose names start with "tenants/acme", keeps its secret.
    assert ACME_CORP.identity_provider_secret("acme-oidc") in left


async def test_a_secret_stored_by_a_crashed_request_goes_but_not_one_without_the_tags() -> None:
    world = World()
    await premium_with_oidc(world, "acme")
    await premium_with_oidc(world, "acme-corp")
    # A PATCH stored a new provider's secret, then crashed before its transaction.
    world.cloud.seed_secret(ACME.identity_provider_secret("Facebook"), "orphan", tags=ownership_tags("acme"))
    untagged = world.cloud.seed_secret("tenants/acme/idp/Other/secret", "not ours", tags={"owner": "someone"})
    other_tenant = world.cloud.seed_secret("tenants/acme/idp/Shared/secret", "x", tags=ownership_tags("acme-corp"))
    # Named as acme-corp's, tagged as acme's: the name says it is not under acme's prefix.
    misnamed = world.cloud.seed_secret("tenants/acme-corp/idp/Odd/secret", "x", tags=ownership_tags("acme"))

    outcomes = await teardown(world, "acme")
    assert outcomes["delete_identity_provider_secrets"] == "ok"
    left = secret_names(world)
    assert ACME.identity_provider_secret("Facebook") not in left
    assert ACME.identity_provider_secret("acme-oidc") not in left
    assert {untagged.name, other_tenant.name, misnamed.name, ACME_CORP.identity_provider_secret("acme-oidc")} <= left
    assert [c.kwargs["prefix"] for c in world.cloud.calls_to("list_secrets_with_prefix")] == ["tenants/acme/idp/"]


async def test_a_tenant_that_never_had_a_provider_secret_still_skips_the_step() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    await premium_with_oidc(world, "acme-corp")
    outcomes = await teardown(world, "acme")
    assert outcomes["delete_identity_provider_secrets"] == "skipped"
    assert ACME_CORP.identity_provider_secret("acme-oidc") in secret_names(world)
