"""Teardown steps of resources a tenant's tier never has are recorded ``skipped``, on the fakes.

Only when nothing of the tenant's was found either: the look-ups run all the same, so what an
older template made (recorded, or left by a run cut short) is still deleted, and recorded ``ok``.
"""

from __future__ import annotations

from domain.naming import ResourceNames, ownership_tags
from domain.tenant import TenantStatus
from tests.unit.fakes import CELL, World

# What basic lacks (service/tiers.toml): a hosted-UI domain, an app client secret, guest
# identities (the unauthenticated role), extra roles; and no tenant here has identity providers.
BASIC_LACKS = {
    "delete_hosted_ui_domain",
    "delete_client_secret",
    "delete_unauth_role",
    "delete_extra_roles",
    "delete_identity_provider_secrets",
}


async def teardown_outcomes(world: World, tenant_id: str) -> dict[str, str]:
    before = len(world.registry.events_of(tenant_id))
    await world.delete(tenant_id)
    assert await world.deprovision(tenant_id) is TenantStatus.DELETED
    return {
        e.action.removeprefix("step."): e.outcome
        for e in world.registry.events_of(tenant_id)[before:]
        if e.action.startswith("step.")
    }


async def test_a_basic_tenants_teardown_skips_what_basic_never_has() -> None:
    world = World()
    await world.active_tenant("acme", "basic")
    outcomes = await teardown_outcomes(world, "acme")
    assert {step for step, outcome in outcomes.items() if outcome == "skipped"} == BASIC_LACKS
    assert {outcomes[s] for s in ("delete_auth_role", "delete_identity_pool", "delete_user_pool")} == {"ok"}
    assert world.cloud.is_empty()


async def test_a_premium_tenants_teardown_skips_none_of_its_domain_secret_and_guest_role() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    outcomes = await teardown_outcomes(world, "acme")
    assert {outcomes[s] for s in ("delete_hosted_ui_domain", "delete_client_secret", "delete_unauth_role")} == {"ok"}
    assert world.cloud.is_empty()


async def test_what_an_older_template_made_is_deleted_and_not_skipped() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    # The operator edits the tier after onboarding: no more domain, guests or secret.
    world.tiers["premium"] = world.tiers["premium"].model_copy(
        update={"hosted_ui_domain": False, "allow_guest_identities": False, "unauthenticated_policy": ()}
    )
    outcomes = await teardown_outcomes(world, "acme")
    assert {outcomes[s] for s in ("delete_hosted_ui_domain", "delete_unauth_role")} == {"ok"}
    assert world.cloud.is_empty()  # the domain, the guest role and the secret are gone too


async def test_an_unrecorded_guest_role_of_the_tenants_is_found_by_name_and_deleted() -> None:
    world = World()
    await world.active_tenant("acme", "basic")
    name = ResourceNames(world.settings.resource_prefix, "acme").role("unauth")
    await world.cloud.create_role(
        CELL, name=name, path=world.settings.role_path, trust_policy={}, tags=ownership_tags("acme"), description="x"
    )
    outcomes = await teardown_outcomes(world, "acme")
    assert outcomes["delete_unauth_role"] == "ok"
    assert world.cloud.role(name) is None
    assert outcomes["delete_hosted_ui_domain"] == "skipped"


async def test_nothing_is_skipped_when_the_tier_is_no_longer_defined() -> None:
    world = World()
    await world.active_tenant("acme", "basic")
    del world.tiers["basic"]
    outcomes = await teardown_outcomes(world, "acme")
    assert {step for step, outcome in outcomes.items() if outcome == "skipped"} == {"delete_identity_provider_secrets"}
