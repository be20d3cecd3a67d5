"""Provisioning and teardown of a tenant's AWS resources, against the in-memory cloud."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.errors import CloudError
from domain.naming import ResourceNames, ownership_tags
from domain.provisioning import ProvisioningSettings, provisioning_steps
from domain.tenant import PUBLIC_RESOURCE_KEYS, Tenant, TenantStatus
from tests.unit.fakes import CELL, World

S = TenantStatus
TIERS = ["basic", "standard", "premium"]
NAMES = ResourceNames("tenants", "acme")
ADMIN = "boss@acme.test"
CREATES = (
    "create_user_pool",
    "create_app_client",
    "create_group",
    "create_domain",
    "create_user",
    "create_identity_pool",
    "create_role",
)

BASE_OUTPUTS = {
    "user_pool_id",
    "user_pool_arn",
    "issuer_url",
    "app_client_id",
    "primary_app_client",  # the template's name of the client whose id is app_client_id
    "groups",
    "identity_pool_id",
    "authenticated_role_arn",
    "authenticated_role_name",
}
PREMIUM_EXTRA = {
    "hosted_ui_domain_prefix",
    "hosted_ui_domain",
    "unauthenticated_role_arn",
    "unauthenticated_role_name",
    "app_client_secret_arn",  # premium's app client is confidential
    "app_client_secret_arns",  # every confidential client's secret, by client name
}


def quota_error() -> CloudError:
    return CloudError("LimitExceededException", "You have reached the quota", retryable=False)


def stored(world: World, tenant_id: str = "acme") -> Tenant:
    tenant = world.registry.tenant(tenant_id)
    assert tenant is not None
    return tenant


def expected_outputs(tier: str, *, admin: bool) -> set[str]:
    keys = set(BASE_OUTPUTS)
    if tier == "premium":
        keys |= PREMIUM_EXTRA
    if admin:
        keys.add("admin_username")
    return keys


def assert_one_of_each(world: World, tier: str, tenant_id: str = "acme") -> None:
    names = ResourceNames("tenants", tenant_id)
    assert len(world.cloud.pools_named(names.user_pool)) == 1
    assert len(world.cloud.identity_pools_named(names.identity_pool)) == 1
    [pool] = world.cloud.pools_named(names.user_pool)
    assert len(pool.clients) == 1
    role_names = {r.name for r in world.cloud.roles.values()}
    expected_roles = {names.role("auth")} | ({names.role("unauth")} if tier == "premium" else set())
    assert role_names == expected_roles


def assert_cloud_empty(world: World) -> None:
    cloud = world.cloud
    assert cloud.user_pools == {} and cloud.identity_pools == {} and cloud.roles == {} and cloud.domains == {}
    assert cloud.is_empty()


def assert_deleted(world: World, tenant_id: str = "acme") -> None:
    tenant = stored(world, tenant_id)
    assert tenant.status is S.DELETED
    assert tenant.last_error is None
    assert tenant.outputs == {}
    assert tenant.completed_steps == []
    resources = tenant.public_resources()
    assert all(resources[key] is None for key in PUBLIC_RESOURCE_KEYS)
    assert (resources["account_id"], resources["region"]) == (CELL.account_id, CELL.region)


async def provision_fails(world: World, tenant_id: str = "acme") -> Tenant:
    assert await world.provision(tenant_id) is S.FAILED
    tenant = stored(world, tenant_id)
    assert tenant.status is S.FAILED and tenant.last_error is not None
    return tenant


async def retry_and_provision(world: World, tenant_id: str = "acme") -> TenantStatus | None:
    await world.retry(tenant_id)
    return await world.provision(tenant_id)


async def delete_and_deprovision(world: World, tenant_id: str = "acme") -> TenantStatus | None:
    await world.delete(tenant_id)
    return await world.deprovision(tenant_id)


# -- the happy path, every shipped tier ---------------------------------------------------------------


@pytest.mark.parametrize("tier", TIERS)
async def test_provisioning_each_tier_ends_active_with_everything_recorded(tier: str) -> None:
    world = World()
    await world.onboard_spec("acme", tier, admin_email=ADMIN)
    assert await world.provision("acme") is S.ACTIVE

    tenant = stored(world)
    template = world.tiers[tier]
    assert tenant.last_error is None
    assert set(tenant.outputs) == expected_outputs(tier, admin=True)
    assert sorted(tenant.completed_steps) == sorted(s.name for s in provisioning_steps(template, with_admin=True))
    assert_one_of_each(world, tier)

    resources = tenant.public_resources()
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    assert resources["user_pool_id"] == pool.id and resources["user_pool_arn"] == pool.arn
    assert resources["issuer_url"] == f"https://cognito-idp.{CELL.region}.amazonaws.com/{pool.id}"
    assert resources["app_client_id"] in pool.clients
    assert resources["identity_pool_id"] == ipool.id
    assert resources["authenticated_role_arn"] == world.cloud.role(NAMES.role("auth")).arn  # type: ignore[union-attr]
    if tier == "premium":
        assert resources["unauthenticated_role_arn"] == world.cloud.role(NAMES.role("unauth")).arn  # type: ignore[union-attr]
        assert resources["hosted_ui_domain"] == f"{NAMES.hosted_ui_domain}.auth.{CELL.region}.amazoncognito.com"
    else:
        assert resources["unauthenticated_role_arn"] is None and resources["hosted_ui_domain"] is None
    assert all(resources[key] for key in PUBLIC_RESOURCE_KEYS if resources[key] is not None)


@pytest.mark.parametrize("tier", TIERS)
async def test_resources_carry_the_ownership_tags(tier: str) -> None:
    world = World()
    await world.active_tenant("acme", tier)
    tags = ownership_tags("acme")
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    assert pool.tags == tags
    assert ipool.tags == tags
    assert world.cloud.roles and all(role.tags == tags for role in world.cloud.roles.values())


@pytest.mark.parametrize("tier", TIERS)
async def test_roles_trust_only_the_tenants_identity_pool(tier: str) -> None:
    world = World()
    tenant = await world.active_tenant("acme", tier)
    pool_id = tenant.outputs["identity_pool_id"]
    kinds = [("auth", "authenticated")] + ([("unauth", "unauthenticated")] if tier == "premium" else [])
    for kind, amr in kinds:
        role = world.cloud.role(NAMES.role(kind))
        assert role is not None
        [stmt] = role.trust_policy["Statement"]
        assert stmt["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
        assert stmt["Condition"]["StringEquals"] == {"cognito-identity.amazonaws.com:aud": pool_id}
        assert stmt["Condition"]["ForAnyValue:StringLike"] == {"cognito-identity.amazonaws.com:amr": amr}
        assert role.path == "/tenants/" and role.arn.endswith(f":role/tenants/{NAMES.role(kind)}")


@pytest.mark.parametrize("tier", TIERS)
async def test_identity_pool_is_wired_to_the_pool_client_and_roles(tier: str) -> None:
    world = World()
    tenant = await world.active_tenant("acme", tier)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    out = tenant.outputs
    assert ipool.provider_name == f"cognito-idp.{CELL.region}.amazonaws.com/{out['user_pool_id']}"
    assert ipool.client_id == out["app_client_id"]
    expected = {"authenticated": out["authenticated_role_arn"]}
    if tier == "premium":
        expected["unauthenticated"] = out["unauthenticated_role_arn"]
    assert ipool.roles == expected
    assert ipool.allow_unauthenticated is (tier == "premium")


@pytest.mark.parametrize("tier", TIERS)
async def test_role_policies_are_rendered_for_the_tenant(tier: str) -> None:
    world = World()
    tenant = await world.active_tenant("acme", tier)
    role = world.cloud.role(NAMES.role("auth"))
    assert role is not None
    [(policy_name, document)] = role.inline_policies.items()
    assert policy_name == NAMES.role_policy("auth")
    resources = [r for stmt in document["Statement"] for r in stmt["Resource"]]
    assert "arn:aws:s3:::saas-tenant-data/acme/${cognito-identity.amazonaws.com:sub}/*" in resources
    if tier != "basic":
        rows = document["Statement"][1]
        assert rows["Resource"] == [f"arn:aws:dynamodb:{CELL.region}:{CELL.account_id}:table/saas-tenant-data"]
        assert rows["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["acme#*"]
    if tier == "premium":
        unauth = world.cloud.role(NAMES.role("unauth"))
        assert unauth is not None
        [doc] = unauth.inline_policies.values()
        assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::saas-tenant-data/acme/public/*"]
    assert tenant.status is S.ACTIVE


@pytest.mark.parametrize("tier", TIERS)
async def test_user_pool_follows_the_tier(tier: str) -> None:
    world = World()
    await world.active_tenant("acme", tier)
    template = world.tiers[tier]
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    assert pool.deletion_protection == ("ACTIVE" if template.deletion_protection else "INACTIVE")
    assert pool.mfa == template.mfa
    assert set(pool.groups) == {g.name for g in template.groups}
    [client] = pool.clients.values()
    assert {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(client["explicit_auth_flows"])
    assert pool.domain == (NAMES.hosted_ui_domain if template.hosted_ui_domain else None)
    assert pool.users == {}  # no admin_email, no admin user


@pytest.mark.parametrize(("tier", "username"), [("basic", ADMIN), ("standard", ADMIN), ("premium", "admin")])
async def test_admin_user_is_created_in_the_admin_group(tier: str, username: str) -> None:
    world = World()
    tenant = await world.active_tenant("acme", tier, admin_email=ADMIN)
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    [user] = pool.users.values()
    assert (user.username, user.email) == (username, ADMIN)
    assert user.groups == {"admins"}
    assert tenant.outputs["admin_username"] == username


async def test_admin_user_waits_for_slow_groups() -> None:
    world = World()

    async def slow(**_: Any) -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    world.cloud.before("create_group", slow)
    tenant = await world.active_tenant("acme", "basic", admin_email=ADMIN)
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    assert pool.users[ADMIN].groups == {"admins"}
    assert tenant.status is S.ACTIVE


async def test_independent_steps_overlap_against_aws() -> None:
    # premium: auth_role and unauth_role both follow identity_pool; each create_role call waits
    # for the other one to have started, which only works if they run at the same time.
    world = World()
    started = [asyncio.Event(), asyncio.Event()]

    def hook(mine: int) -> Any:
        async def wait_for_other(**_: Any) -> None:
            started[mine].set()
            await started[1 - mine].wait()

        return wait_for_other

    world.cloud.before("create_role", hook(0))
    world.cloud.before("create_role", hook(1))
    await world.onboard_spec("acme", "premium")
    assert await asyncio.wait_for(world.provision("acme"), 2.0) is S.ACTIVE


async def test_every_step_is_reported_to_the_observer() -> None:
    world = World()
    await world.active_tenant("acme", "premium", admin_email=ADMIN)
    events = world.observer.events
    assert sorted(e.step for e in events) == sorted(stored(world).completed_steps)
    assert all(e.tenant_id == "acme" and e.operation == "provision" and e.outcome == "ok" for e in events)
    assert all(e.error_code is None and e.duration_s >= 0 for e in events)


async def test_tenant_id_with_a_forbidden_word_gets_a_hashed_domain() -> None:
    world = World()
    tenant = await world.active_tenant("laws-firm", "premium")
    names = ResourceNames("tenants", "laws-firm")
    assert "aws" not in names.hosted_ui_domain
    assert tenant.outputs["hosted_ui_domain_prefix"] == names.hosted_ui_domain
    [pool] = world.cloud.pools_named(names.user_pool)
    assert pool.domain == names.hosted_ui_domain


async def test_resource_prefix_setting_names_everything() -> None:
    world = World(settings=ProvisioningSettings(resource_prefix="saas", role_path="/saas/tenants/"))
    tenant = await world.active_tenant("acme", "basic")
    assert len(world.cloud.pools_named("saas-acme")) == 1
    role = world.cloud.role("saas-acme-auth")
    assert role is not None and role.path == "/saas/tenants/"
    assert tenant.outputs["authenticated_role_name"] == "saas-acme-auth"


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", TIERS)
async def test_failure_mid_plan_records_error_step_and_progress(tier: str) -> None:
    world = World()
    auth_policy = NAMES.role_policy("auth")
    world.cloud.fail("put_role_policy", quota_error(), when=lambda kw: kw["policy_name"] == auth_policy)
    await world.onboard_spec("acme", tier, admin_email=ADMIN)

    tenant = await provision_fails(world)
    assert tenant.last_error.code == "LimitExceededException"  # type: ignore[union-attr]
    assert tenant.last_error.step == "auth_role_policy"  # type: ignore[union-attr]
    assert "quota" in tenant.last_error.message  # type: ignore[union-attr]
    assert "auth_role_policy" not in tenant.completed_steps
    assert "identity_pool_roles" not in tenant.completed_steps
    # Every resource that exists is recorded, so nothing is forgotten.
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    assert tenant.outputs["user_pool_id"] == pool.id
    assert tenant.outputs["app_client_id"] in pool.clients
    assert tenant.outputs["identity_pool_id"] == ipool.id
    assert tenant.outputs["authenticated_role_arn"] == world.cloud.role(NAMES.role("auth")).arn  # type: ignore[union-attr]
    assert tenant.outputs["admin_username"]
    if tier == "premium":
        assert tenant.outputs["hosted_ui_domain"]
        assert tenant.outputs["unauthenticated_role_arn"] == world.cloud.role(NAMES.role("unauth")).arn  # type: ignore[union-attr]
    assert ipool.roles == {}
    [failed] = [e for e in world.observer.events if e.outcome == "error"]
    assert (failed.step, failed.error_code) == ("auth_role_policy", "LimitExceededException")


@pytest.mark.parametrize("tier", TIERS)
async def test_retry_resumes_without_redoing_completed_steps(tier: str) -> None:
    world = World()
    auth_policy = NAMES.role_policy("auth")
    world.cloud.fail("put_role_policy", quota_error(), when=lambda kw: kw["policy_name"] == auth_policy)
    await world.onboard_spec("acme", tier, admin_email=ADMIN)
    failed = await provision_fails(world)
    done_before = set(failed.completed_steps)
    calls_before = len(world.cloud.calls)
    events_before = len(world.observer.events)

    assert await retry_and_provision(world) is S.ACTIVE

    rerun = {e.step for e in world.observer.events[events_before:]}
    all_steps = {s.name for s in provisioning_steps(world.tiers[tier], with_admin=True)}
    assert rerun == all_steps - done_before
    assert rerun >= {"auth_role_policy", "identity_pool_roles"}
    second_run_methods = {c.method for c in world.cloud.calls[calls_before:]}
    assert not second_run_methods & set(CREATES), second_run_methods
    assert "find_user_pool" not in second_run_methods
    premium = tier == "premium"
    expected_creates = {
        "create_user_pool": 1,
        "create_app_client": 1,
        "create_identity_pool": 1,
        "create_role": 2 if premium else 1,
        "create_user": 1,
        "create_domain": 1 if premium else 0,
        "create_group": len(world.tiers[tier].groups),
    }
    assert {m: world.cloud.count(m) for m in expected_creates} == expected_creates
    assert_one_of_each(world, tier)
    tenant = stored(world)
    assert tenant.last_error is None
    assert set(tenant.outputs) == expected_outputs(tier, admin=True)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    assert ipool.roles["authenticated"] == tenant.outputs["authenticated_role_arn"]


@pytest.mark.parametrize(
    ("method", "step"),
    [
        ("create_user_pool", "user_pool"),
        ("create_app_client", "app_client"),
        ("create_group", "groups"),
        ("create_domain", "hosted_ui_domain"),
        ("create_user", "admin_user"),
        ("create_identity_pool", "identity_pool"),
        ("create_role", None),
        ("configure_mfa", "user_pool_mfa"),
        ("add_user_to_group", "admin_user"),
        ("put_role_policy", None),
        ("set_roles", "identity_pool_roles"),
    ],
)
async def test_a_lost_response_then_retry_adopts_instead_of_duplicating(method: str, step: str | None) -> None:
    world = World()
    world.cloud.lose_response(method)
    await world.onboard_spec("acme", "premium", admin_email=ADMIN)

    tenant = await provision_fails(world)
    assert tenant.last_error.code == "RequestTimeout"  # type: ignore[union-attr]
    if step is not None:
        assert tenant.last_error.step == step  # type: ignore[union-attr]
    assert await retry_and_provision(world) is S.ACTIVE

    assert_one_of_each(world, "premium")
    [pool] = world.cloud.pools_named(NAMES.user_pool)
    assert len(pool.users) == 1 and len(pool.groups) == 4 and pool.domain == NAMES.hosted_ui_domain
    tenant = stored(world)
    [ipool] = world.cloud.identity_pools_named(NAMES.identity_pool)
    assert tenant.outputs["user_pool_id"] == pool.id and tenant.outputs["identity_pool_id"] == ipool.id
    assert world.cloud.count("create_user_pool") == 1
    assert world.cloud.count("create_identity_pool") == 1


async def test_lost_create_user_pool_response_leaves_exactly_one_pool() -> None:
    world = World()
    world.cloud.lose_response("create_user_pool")
    await world.onboard_spec("acme", "standard")
    tenant = await provision_fails(world)
    assert tenant.last_error.step == "user_pool"  # type: ignore[union-attr]
    assert "user_pool_id" not in tenant.outputs  # the response never arrived
    assert len(world.cloud.user_pools) == 1

    assert await retry_and_provision(world) is S.ACTIVE
    assert len(world.cloud.user_pools) == 1
    [pool] = world.cloud.user_pools.values()
    assert stored(world).outputs["user_pool_id"] == pool.id
    assert world.cloud.count("create_user_pool") == 1


async def test_adopted_role_is_rebound_to_the_current_identity_pool() -> None:
    # A role left by an earlier attempt (ours, by its tags) trusting an identity pool that is gone.
    world = World()
    world.cloud.seed_role(
        NAMES.role("auth"),
        tags=ownership_tags("acme"),
        trust_policy={"Version": "2012-10-17", "Statement": [{"Condition": {"StringEquals": {"aud": "old"}}}]},
    )
    tenant = await world.active_tenant("acme", "basic")
    role = world.cloud.role(NAMES.role("auth"))
    assert role is not None
    aud = role.trust_policy["Statement"][0]["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"]
    assert aud == tenant.outputs["identity_pool_id"]
    assert world.cloud.count("create_role") == 0


async def test_create_role_racing_with_our_own_earlier_attempt_adopts_it() -> None:
    world = World()

    async def earlier_attempt_creates_it(**kw: Any) -> None:
        world.cloud.seed_role(kw["name"], tags=ownership_tags("acme"))

    world.cloud.before("create_role", earlier_attempt_creates_it)
    tenant = await world.active_tenant("acme", "basic")
    role = world.cloud.role(NAMES.role("auth"))
    assert role is not None and tenant.outputs["authenticated_role_arn"] == role.arn
    assert role.trust_policy["Statement"][0]["Condition"]["StringEquals"] == {
        "cognito-identity.amazonaws.com:aud": tenant.outputs["identity_pool_id"]
    }


@pytest.mark.parametrize(
    "foreign_tags",
    [{}, {"team": "data"}, ownership_tags("acme-corp"), {"tenants:tenant-id": "acme"}],
    ids=["untagged", "other-tags", "another-tenant", "no-managed-by"],
)
async def test_a_foreign_role_with_our_name_is_not_adopted(foreign_tags: dict[str, str]) -> None:
    world = World()
    foreign_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}
    foreign_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    world.cloud.seed_role(
        NAMES.role("auth"), tags=foreign_tags, trust_policy=foreign_trust, inline_policies={"theirs": foreign_policy}
    )
    await world.onboard_spec("acme", "basic")

    tenant = await provision_fails(world)
    assert tenant.last_error.code == "ResourceNotOwned"  # type: ignore[union-attr]
    assert tenant.last_error.step == "auth_role"  # type: ignore[union-attr]
    assert "authenticated_role_arn" not in tenant.outputs
    role = world.cloud.role(NAMES.role("auth"))
    assert role is not None
    assert role.tags == foreign_tags
    assert role.trust_policy == foreign_trust
    assert role.inline_policies == {"theirs": foreign_policy}
    touched = {c.method for c in world.cloud.calls if c.kwargs.get("name") == NAMES.role("auth")
               or c.kwargs.get("role_name") == NAMES.role("auth")}
    assert touched <= {"get_role"}


async def test_a_foreign_role_differing_only_in_case_is_not_adopted() -> None:
    world = World()
    world.cloud.seed_role("Tenants-Acme-Auth")
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert tenant.last_error.step == "auth_role"  # type: ignore[union-attr]
    assert tenant.last_error.code in {"ResourceNotOwned", "EntityAlreadyExists"}  # type: ignore[union-attr]
    assert world.cloud.role("Tenants-Acme-Auth").tags == {}  # type: ignore[union-attr]


async def test_a_foreign_user_pool_with_our_name_is_not_adopted() -> None:
    world = World()
    foreign = world.cloud.seed_user_pool(NAMES.user_pool)
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert (tenant.last_error.code, tenant.last_error.step) == ("ResourceNotOwned", "user_pool")  # type: ignore[union-attr]
    assert tenant.outputs == {}
    assert list(world.cloud.user_pools) == [foreign.id] and foreign.clients == {} and foreign.tags == {}


async def test_a_foreign_identity_pool_with_our_name_is_not_adopted() -> None:
    world = World()
    foreign = world.cloud.seed_identity_pool(NAMES.identity_pool, tags=ownership_tags("someone-else"))
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert (tenant.last_error.code, tenant.last_error.step) == ("ResourceNotOwned", "identity_pool")  # type: ignore[union-attr]
    assert foreign.roles == {} and list(world.cloud.identity_pools) == [foreign.id]
    # ...and deleting the tenant removes its own pool but not the foreign identity pool.
    assert await delete_and_deprovision(world) is S.DELETED
    assert world.cloud.user_pools == {}
    assert list(world.cloud.identity_pools) == [foreign.id]


async def test_hosted_ui_domain_held_by_someone_else() -> None:
    world = World()
    world.cloud.take_domain(NAMES.hosted_ui_domain)
    await world.onboard_spec("acme", "premium")
    tenant = await provision_fails(world)
    assert (tenant.last_error.code, tenant.last_error.step) == ("DomainTaken", "hosted_ui_domain")  # type: ignore[union-attr]
    assert NAMES.hosted_ui_domain in tenant.last_error.message  # type: ignore[union-attr]
    assert world.cloud.domains[(CELL.region, NAMES.hosted_ui_domain)] == "us-east-1_SomeoneElse"


async def test_tier_removed_before_provisioning_fails_clearly() -> None:
    world = World()
    await world.onboard_spec("acme", "premium")
    del world.tiers["premium"]
    tenant = await provision_fails(world)
    assert tenant.last_error.code == "UnknownTier"  # type: ignore[union-attr]
    assert world.cloud.calls == []


async def test_provision_ignores_a_tenant_that_is_not_provisioning() -> None:
    world = World()
    await world.active_tenant("acme", "basic")
    calls = len(world.cloud.calls)
    assert await world.provision("acme") is None
    assert await world.provision("nobody") is None
    assert len(world.cloud.calls) == calls
    assert stored(world).status is S.ACTIVE


async def test_unexpected_exception_is_recorded_without_its_text() -> None:
    world = World()
    world.cloud.fail("create_app_client", RuntimeError("secret://dsn-with-password"))
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert tenant.last_error.code == "InternalError"  # type: ignore[union-attr]
    assert tenant.last_error.step == "app_client"  # type: ignore[union-attr]
    assert "secret" not in tenant.last_error.message  # type: ignore[union-attr]


# -- teardown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", TIERS)
async def test_deprovision_deletes_everything(tier: str) -> None:
    world = World()
    await world.active_tenant("acme", tier, admin_email=ADMIN)
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)
    assert {e.operation for e in world.observer.events} == {"provision", "deprovision"}
    assert all(e.outcome == "ok" for e in world.observer.events)


@pytest.mark.parametrize("tier", TIERS)
async def test_deletion_protection_is_lifted_only_where_it_is_on(tier: str) -> None:
    world = World()
    await world.active_tenant("acme", tier)
    await delete_and_deprovision(world)
    lifted = world.cloud.calls_to("set_deletion_protection")
    if world.tiers[tier].deletion_protection:
        [call] = lifted
        assert call.kwargs["active"] is False
        methods = world.cloud.methods_called()
        assert methods.index("set_deletion_protection") < methods.index("delete_user_pool")
    else:
        assert lifted == []
    assert_cloud_empty(world)


async def test_premium_teardown_deletes_the_domain_before_the_pool() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    await delete_and_deprovision(world)
    methods = world.cloud.methods_called()
    assert methods.count("delete_domain") == 1
    assert methods.index("delete_domain") < methods.index("delete_user_pool")
    assert world.cloud.domains == {}
    assert_deleted(world)


async def test_domain_deletion_gates_pool_deletion_even_when_it_is_slow() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    identity_pool_deleted = asyncio.Event()

    async def mark(**_: Any) -> None:
        identity_pool_deleted.set()

    async def slow_domain(**_: Any) -> None:
        await identity_pool_deleted.wait()
        for _ in range(10):
            await asyncio.sleep(0)

    world.cloud.before("delete_identity_pool", mark)
    world.cloud.before("delete_domain", slow_domain)
    assert await asyncio.wait_for(delete_and_deprovision(world), 2.0) is S.DELETED
    assert_cloud_empty(world)


async def test_roles_lose_their_policies_before_they_are_deleted() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    await delete_and_deprovision(world)
    deletes = [c for c in world.cloud.calls if c.method in ("delete_role_policy", "delete_role")]
    for role in (NAMES.role("auth"), NAMES.role("unauth")):
        mine = [c.method for c in deletes if role in (c.kwargs.get("name"), c.kwargs.get("role_name"))]
        assert mine == ["delete_role_policy", "delete_role"]
    methods = world.cloud.methods_called()
    last_role_delete = max(i for i, m in enumerate(methods) if m == "delete_role")
    assert last_role_delete < methods.index("delete_identity_pool") < methods.index("delete_user_pool")


async def test_teardown_finds_resources_created_but_never_recorded() -> None:
    # A worker died after AWS created everything and before the registry heard of it.
    world = World()
    await world.onboard_spec("acme", "premium")
    tags = ownership_tags("acme")
    pool = world.cloud.seed_user_pool(NAMES.user_pool, tags=tags, deletion_protection=True)
    world.cloud.domains[(CELL.region, NAMES.hosted_ui_domain)] = pool.id
    pool.domain = NAMES.hosted_ui_domain
    world.cloud.seed_identity_pool(NAMES.identity_pool, tags=tags)
    world.cloud.seed_role(NAMES.role("auth"), tags=tags, inline_policies={NAMES.role_policy("auth"): {}})
    world.cloud.seed_role(NAMES.role("unauth"), tags=tags)
    assert stored(world).outputs == {}

    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


async def test_teardown_after_a_lost_response_deletes_the_unrecorded_resource() -> None:
    world = World()
    world.cloud.lose_response("create_identity_pool")
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert "identity_pool_id" not in tenant.outputs and len(world.cloud.identity_pools) == 1
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)


async def test_teardown_leaves_foreign_resources_with_our_names_alone() -> None:
    world = World()
    await world.active_tenant("acme", "standard")
    foreign_pool = world.cloud.seed_user_pool(NAMES.user_pool, deletion_protection=True)
    foreign_ipool = world.cloud.seed_identity_pool(NAMES.identity_pool)

    assert await delete_and_deprovision(world) is S.DELETED
    assert list(world.cloud.user_pools) == [foreign_pool.id]
    assert foreign_pool.deletion_protection == "ACTIVE"  # not even unprotected
    assert list(world.cloud.identity_pools) == [foreign_ipool.id]
    assert world.cloud.roles == {}
    assert_deleted(world)


async def test_teardown_after_foreign_role_conflict_keeps_the_foreign_role() -> None:
    world = World()
    foreign = world.cloud.seed_role(NAMES.role("auth"), inline_policies={"theirs": {"Version": "2012-10-17"}})
    await world.onboard_spec("acme", "basic")
    await provision_fails(world)
    assert await delete_and_deprovision(world) is S.DELETED
    assert world.cloud.user_pools == {} and world.cloud.identity_pools == {}
    assert world.cloud.role(NAMES.role("auth")) is foreign
    assert foreign.inline_policies == {"theirs": {"Version": "2012-10-17"}}
    assert_deleted(world)


async def test_when_our_pool_is_gone_a_same_named_foreign_pool_is_not_deleted() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "basic")
    del world.cloud.user_pools[tenant.outputs["user_pool_id"]]  # removed out of band
    foreign = world.cloud.seed_user_pool(NAMES.user_pool)
    assert await delete_and_deprovision(world) is S.DELETED
    assert list(world.cloud.user_pools) == [foreign.id]


async def test_resources_already_gone_count_as_deleted() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "premium")
    del world.cloud.identity_pools[tenant.outputs["identity_pool_id"]]
    del world.cloud.roles[(CELL.account_id, NAMES.role("unauth").lower())]
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


@pytest.mark.parametrize(
    ("method", "tier"),
    [
        ("delete_role", "basic"),
        ("delete_role_policy", "basic"),
        ("delete_identity_pool", "basic"),
        ("delete_domain", "premium"),
        ("set_deletion_protection", "standard"),
        ("delete_user_pool", "basic"),
    ],
)
async def test_resource_vanishing_between_lookup_and_delete_counts_as_deleted(method: str, tier: str) -> None:
    # Someone else (another worker, an operator) deletes it just before our call reaches AWS.
    world = World()
    await world.active_tenant("acme", tier)
    cloud = world.cloud

    async def vanish(**kw: Any) -> None:
        if method in ("delete_role", "delete_role_policy"):
            role = cloud.role(kw.get("name") or kw["role_name"])
            assert role is not None
            role.inline_policies.clear()
            if method == "delete_role":
                del cloud.roles[(CELL.account_id, role.name.lower())]
        elif method == "delete_identity_pool":
            del cloud.identity_pools[kw["identity_pool_id"]]
        elif method == "delete_domain":
            del cloud.domains[(CELL.region, kw["domain"])]
            cloud.user_pools[kw["pool_id"]].domain = None
        else:
            del cloud.user_pools[kw["pool_id"]]

    cloud.before(method, vanish)
    assert await delete_and_deprovision(world) is S.DELETED
    assert cloud.count(method) >= 1
    assert_cloud_empty(world)
    assert_deleted(world)


async def test_failed_teardown_stays_deprovisioning_and_delete_again_finishes() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    world.cloud.fail("delete_identity_pool", CloudError("InternalErrorException", "boom", retryable=True))
    assert await delete_and_deprovision(world) is S.DEPROVISIONING
    tenant = stored(world)
    assert tenant.status is S.DEPROVISIONING
    assert (tenant.last_error.code, tenant.last_error.step) == ("InternalErrorException", "delete_identity_pool")  # type: ignore[union-attr]
    assert world.cloud.roles == {}  # the steps that ran are done
    assert "authenticated_role_arn" not in tenant.outputs
    assert tenant.outputs["identity_pool_id"]  # still there, still recorded
    assert len(world.cloud.user_pools) == 1  # never started: it comes after the identity pool

    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


async def test_deleting_a_pool_with_protection_or_domain_is_refused_by_the_cloud() -> None:
    # The fake is as strict as AWS here; the teardown tests above rely on it.
    world = World()
    tenant = await world.active_tenant("acme", "premium")
    pool_id = tenant.outputs["user_pool_id"]
    with pytest.raises(CloudError) as caught:
        await world.cloud.delete_user_pool(CELL, pool_id=pool_id)
    assert caught.value.code == "InvalidParameterException"
    await world.cloud.set_deletion_protection(CELL, pool_id=pool_id, active=False)
    with pytest.raises(CloudError) as caught:
        await world.cloud.delete_user_pool(CELL, pool_id=pool_id)
    assert caught.value.code == "InvalidParameterException" and "domain" in caught.value.message
    assert pool_id in world.cloud.user_pools


async def test_deprovision_ignores_a_tenant_that_is_not_deprovisioning() -> None:
    world = World()
    await world.active_tenant("acme", "basic")
    assert await world.deprovision("acme") is None
    assert stored(world).status is S.ACTIVE and len(world.cloud.user_pools) == 1


async def test_teardown_works_when_the_tier_was_removed() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    del world.tiers["premium"]
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)


# -- a DELETE while provisioning ----------------------------------------------------------------


async def test_delete_during_provisioning_stops_the_run_and_teardown_cleans_up() -> None:
    world = World()

    async def operator_deletes(**_: Any) -> None:
        await world.delete("acme")

    world.cloud.before("create_role", operator_deletes)
    await world.onboard_spec("acme", "basic", admin_email=ADMIN)

    assert await world.provision("acme") is None
    tenant = stored(world)
    assert tenant.status is S.DEPROVISIONING and tenant.last_error is None
    # The role was created in AWS, but the run stopped before recording it or going further.
    assert world.cloud.role(NAMES.role("auth")) is not None
    assert "authenticated_role_arn" not in tenant.outputs
    assert world.cloud.count("put_role_policy") == 0 and world.cloud.count("set_roles") == 0
    assert ("auth_role", "superseded") in {(e.step, e.outcome) for e in world.observer.events}

    assert await world.deprovision("acme") is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


async def test_delete_during_provisioning_wins_over_a_concurrent_failure() -> None:
    world = World()

    async def operator_deletes(**_: Any) -> None:
        await world.delete("acme")

    world.cloud.before("create_app_client", operator_deletes)
    world.cloud.fail("create_group", quota_error())
    await world.onboard_spec("acme", "standard")
    await world.provision("acme")
    assert stored(world).status is S.DEPROVISIONING
    assert await world.deprovision("acme") is S.DELETED
    assert_cloud_empty(world)


async def test_provisioning_a_tenant_deleted_before_it_started_does_nothing() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    await world.delete("acme")
    assert await world.provision("acme") is None
    assert world.cloud.calls == []
    assert await world.deprovision("acme") is S.DELETED
    assert_deleted(world)


async def test_role_vanishing_before_its_policies_are_listed_counts_as_deleted() -> None:
    # get_role found it; by the time ListRolePolicies runs, someone else has deleted it.
    world = World()
    await world.active_tenant("acme", "basic")

    async def vanish(**kw: Any) -> None:
        del world.cloud.roles[(CELL.account_id, kw["role_name"].lower())]

    world.cloud.before("list_role_policies", vanish)
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


@pytest.mark.parametrize("method", ["delete_role", "delete_identity_pool", "delete_domain", "delete_user_pool"])
async def test_lost_delete_response_then_delete_again_finishes(method: str) -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    world.cloud.lose_response(method)
    assert await delete_and_deprovision(world) is S.DEPROVISIONING
    assert stored(world).last_error.code == "RequestTimeout"  # type: ignore[union-attr]
    assert await delete_and_deprovision(world) is S.DELETED
    assert_cloud_empty(world)
    assert_deleted(world)


RETRYING = ProvisioningSettings(step_attempts=4, step_backoff_s=0.0)


@pytest.mark.parametrize(
    "method",
    ["create_user_pool", "create_app_client", "create_identity_pool", "create_domain", "create_role", "create_user"],
)
async def test_a_lost_create_response_is_adopted_by_the_steps_own_retry(method: str) -> None:
    world = World(settings=RETRYING)
    world.cloud.lose_response(method)
    await world.onboard_spec("acme", "premium", admin_email=ADMIN)
    assert await world.provision("acme") is S.ACTIVE
    assert_one_of_each(world, "premium")
    assert world.cloud.count("create_user_pool") == 1
    assert world.cloud.count("create_identity_pool") == 1


async def test_retryable_errors_are_retried_until_the_step_succeeds() -> None:
    world = World(settings=RETRYING)
    for _ in range(3):
        world.cloud.fail("set_roles", CloudError("TooManyRequestsException", "Rate exceeded", retryable=True))
    await world.onboard_spec("acme", "basic")
    assert await world.provision("acme") is S.ACTIVE
    assert world.cloud.count("set_roles") == 4


async def test_retryable_errors_give_up_after_the_configured_attempts() -> None:
    world = World(settings=RETRYING)
    for _ in range(4):
        world.cloud.fail("set_roles", CloudError("TooManyRequestsException", "Rate exceeded", retryable=True))
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert tenant.last_error.code == "TooManyRequestsException"  # type: ignore[union-attr]
    assert world.cloud.count("set_roles") == 4


async def test_a_throttle_the_sdk_retried_already_is_not_retried_by_the_step() -> None:
    world = World(settings=RETRYING)
    world.cloud.fail("set_roles", CloudError("TooManyRequestsException", "Rate exceeded", retryable=True, attempts=8))
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert tenant.last_error.code == "TooManyRequestsException"  # type: ignore[union-attr]
    assert world.cloud.count("set_roles") == 1


async def test_permanent_errors_are_not_retried() -> None:
    world = World(settings=RETRYING)
    world.cloud.fail("create_identity_pool", CloudError("LimitExceededException", "quota", retryable=False))
    await world.onboard_spec("acme", "basic")
    tenant = await provision_fails(world)
    assert tenant.last_error.code == "LimitExceededException"  # type: ignore[union-attr]
    assert world.cloud.count("create_identity_pool") == 1


async def test_a_run_whose_lease_was_taken_over_writes_nothing() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    async with world.registry() as uow:
        stale = await uow.jobs.claim("worker-a", world.clock.now(), 30)
        await uow.commit()
    assert stale is not None
    async with world.registry() as uow:  # worker-b takes the job over once the lease expired
        world.clock.advance(seconds=31)
        current = await uow.jobs.claim("worker-b", world.clock.now(), 30)
        await uow.commit()
    assert current is not None and current.attempts == stale.attempts + 1

    assert await world.provision("acme", stale) is None
    tenant = stored(world)
    assert tenant.status is S.PROVISIONING and tenant.outputs == {} and tenant.completed_steps == []

    assert await world.provision("acme", current) is S.ACTIVE
    assert_one_of_each(world, "basic")  # the stale run's pool was adopted, not duplicated
