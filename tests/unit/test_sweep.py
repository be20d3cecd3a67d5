"""The orphan sweep against the in-memory cloud: what is an orphan, what is never touched, and
how `apply` deletes."""

from __future__ import annotations

import copy
import json
from typing import Any

from domain.errors import CloudError
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID, ResourceNames, ownership_tags
from domain.provisioning import Gateways
from domain.sweep import SweepOrphans, SweepReport
from domain.tenant import TenantSpec, TenantStatus
from tests.unit.fakes import CELL, World

LISTING = {"list_owned_user_pools", "list_owned_identity_pools", "list_owned_roles", "list_owned_secrets"}


def sweeper(world: World) -> SweepOrphans:
    gateways = Gateways(user_pools=world.cloud, identity_pools=world.cloud, iam=world.cloud, secrets=world.cloud)
    return SweepOrphans(gateways, world.registry, CELL, world.settings)


def seed_orphans(world: World, tenant_id: str, *, domain: bool = False, protected: bool = False) -> dict[str, str]:
    """A user pool, an identity pool and an authenticated role (with an inline policy) named and
    tagged as the service names and tags them for ``tenant_id``; returns their ids."""
    names = ResourceNames("tenants", tenant_id)
    tags = ownership_tags(tenant_id)
    pool = world.cloud.seed_user_pool(names.user_pool, tags=tags, deletion_protection=protected)
    if domain:
        pool.domain = names.hosted_ui_domain
        world.cloud.domains[(CELL.region, pool.domain)] = pool.id
    identity_pool = world.cloud.seed_identity_pool(names.identity_pool, tags=tags)
    role = world.cloud.seed_role(
        names.role("auth"), tags=tags, path="/tenants/", inline_policies={names.role_policy("auth"): {"Statement": []}}
    )
    return {"user_pool": pool.id, "identity_pool": identity_pool.id, "iam_role": role.name}


def entries(report: SweepReport) -> dict[tuple[str, str], tuple[str | None, str, str]]:
    return {(e.kind, e.id): (e.tenant_id, e.action, e.reason) for e in report.entries}


def snapshot(world: World) -> Any:
    c = world.cloud
    return copy.deepcopy((c.user_pools, c.identity_pools, c.roles, c.domains, c.secrets))


def mark(world: World, tenant_id: str, status: TenantStatus) -> None:
    tenant = world.registry.tenant(tenant_id)
    assert tenant is not None
    tenant.status = status
    world.registry.put(tenant)


async def test_resources_of_a_tenant_the_registry_does_not_know_are_orphans() -> None:
    world = World()
    ids = seed_orphans(world, "ghost")

    report = await sweeper(world)(apply=False)

    assert [(e.kind, e.id) for e in report.entries] == [
        ("iam_role", ids["iam_role"]),
        ("identity_pool", ids["identity_pool"]),
        ("user_pool", ids["user_pool"]),
    ]
    for entry in report.entries:
        assert (entry.tenant_id, entry.action) == ("ghost", "would delete")
        assert "not in the registry" in entry.reason
    assert len(report.orphans) == len(report.remaining) == 3
    assert report.entries[0].arn == "arn:aws:iam::123456789012:role/tenants/tenants-ghost-auth"


async def test_resources_of_a_deleted_tenant_are_orphans_and_apply_deletes_them_in_teardown_order() -> None:
    world = World()
    tenant = await world.active_tenant("gone", "premium")  # domain, deletion protection, guest role
    pool = world.cloud.user_pools[tenant.outputs["user_pool_id"]]
    assert pool.domain is not None and pool.deletion_protection == "ACTIVE"
    mark(world, "gone", TenantStatus.DELETED)  # as if the tombstone was written, the teardown lost
    world.cloud.calls.clear()

    report = await sweeper(world)(apply=True)

    assert {(e.kind, e.action) for e in report.entries} == {
        ("iam_role", "deleted"),
        ("identity_pool", "deleted"),
        ("user_pool", "deleted"),
        ("secret", "deleted"),  # premium's app client secret
    }
    assert len(report.entries) == 5  # two roles
    assert all("is deleted" in e.reason for e in report.entries)
    assert report.remaining == []
    assert world.cloud.is_empty()  # the hosted-UI domain went with the pool
    deletes = [c.method for c in world.cloud.calls if c.method not in LISTING and c.method != "list_role_policies"]
    assert deletes == [
        "delete_role_policy",
        "delete_role",
        "delete_role_policy",
        "delete_role",
        "delete_identity_pool",
        "delete_domain",
        "set_deletion_protection",
        "delete_user_pool",
        "delete_secret",
    ]


async def test_a_second_pool_of_an_active_tenant_is_an_orphan_and_the_recorded_one_is_kept() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "basic")
    names = ResourceNames("tenants", "acme")
    second = world.cloud.seed_user_pool(names.user_pool, tags=ownership_tags("acme"))
    second_identity = world.cloud.seed_identity_pool(names.identity_pool, tags=ownership_tags("acme"))
    # basic has no guest identities: an unauthenticated role is nothing the active tenant uses.
    extra_role = world.cloud.seed_role(names.role("unauth"), tags=ownership_tags("acme"), path="/tenants/")

    dry = await sweeper(world)(apply=False)

    assert entries(dry) == {
        ("iam_role", extra_role.name): ("acme", "would delete", "tenant 'acme' is active and records no unauthenticated role"),
        ("identity_pool", second_identity.id): (
            "acme",
            "would delete",
            f"tenant 'acme' records another identity pool: {tenant.outputs['identity_pool_id']}",
        ),
        ("user_pool", second.id): (
            "acme",
            "would delete",
            f"tenant 'acme' records another user pool: {tenant.outputs['user_pool_id']}",
        ),
    }

    applied = await sweeper(world)(apply=True)

    assert {e.action for e in applied.entries} == {"deleted"}
    assert list(world.cloud.user_pools) == [tenant.outputs["user_pool_id"]]
    assert list(world.cloud.identity_pools) == [tenant.outputs["identity_pool_id"]]
    assert world.cloud.role(names.role("auth")) is not None and world.cloud.role(names.role("unauth")) is None
    assert (await sweeper(world)(apply=False)).entries == ()


async def test_a_role_is_matched_by_arn_not_by_a_name_another_account_repeats() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "basic")
    role_name = tenant.outputs["authenticated_role_name"]
    elsewhere = f"arn:aws:iam::210987654321:role/tenants/{role_name}"
    tenant.outputs["authenticated_role_arn"] = elsewhere  # the tenant's role lives in another account
    world.registry.put(tenant)

    report = await sweeper(world)(apply=False)

    assert entries(report) == {
        ("iam_role", role_name): ("acme", "would delete", f"tenant 'acme' records another authenticated role: {elsewhere}")
    }


async def test_tenants_in_progress_are_skipped_entirely() -> None:
    world = World()
    await world.onboard_spec("busy", "basic")  # provisioning: a create may not be recorded yet
    seed_orphans(world, "busy")
    await world.active_tenant("leaving", "basic")
    await world.delete("leaving")  # deprovisioning: its teardown deletes them
    before = snapshot(world)

    report = await sweeper(world)(apply=True)

    assert len(report.entries) == 6
    for entry in report.entries:
        assert entry.action == "skipped"
        assert entry.reason.endswith("(in progress)")
    assert {e.tenant_id for e in report.entries} == {"busy", "leaving"}
    assert report.orphans == [] and report.remaining == []
    assert snapshot(world) == before


async def test_a_failed_tenant_keeps_what_a_retry_adopts() -> None:
    world = World()
    await world.onboard_spec("halted", "basic")
    world.cloud.fail("create_role", CloudError("LimitExceeded", "Cannot exceed quota for RolesPerAccount"))
    await world.provision("halted")
    tenant = world.registry.tenant("halted")
    assert tenant is not None and tenant.status == TenantStatus.FAILED
    names = ResourceNames("tenants", "halted")
    lost = world.cloud.seed_role(names.role("auth"), tags=ownership_tags("halted"), path="/tenants/")
    second = world.cloud.seed_user_pool(names.user_pool, tags=ownership_tags("halted"))

    report = await sweeper(world)(apply=False)

    assert entries(report) == {
        ("iam_role", lost.name): (
            "halted",
            "skipped",
            "tenant 'halted' is failed and records no authenticated role yet (a retry adopts it)",
        ),
        ("user_pool", second.id): (
            "halted",
            "would delete",
            f"tenant 'halted' records another user pool: {tenant.outputs['user_pool_id']}",
        ),
    }


async def test_foreign_resources_are_never_listed_nor_touched() -> None:
    world = World()
    names = ResourceNames("tenants", "ghost")
    cloud = world.cloud
    untagged = cloud.seed_user_pool(names.user_pool)
    cloud.seed_identity_pool(names.identity_pool, tags={TAG_TENANT_ID: "ghost"})  # no managed-by
    cloud.seed_user_pool(names.user_pool, tags={TAG_TENANT_ID: "ghost", TAG_MANAGED_BY: "someone-else"})
    # Another deployment in the same account, under another resource prefix.
    cloud.seed_user_pool("staging-ghost", tags=ownership_tags("ghost"))
    # Tagged, but outside the service's role path, or without a tenant this service could name.
    cloud.seed_role(names.role("auth"), tags=ownership_tags("ghost"), path="/")
    cloud.seed_role("hand-made", tags={TAG_MANAGED_BY: MANAGED_BY_VALUE}, path="/tenants/")
    cloud.seed_role("tenants-bad--id-auth", tags=ownership_tags("bad--id"), path="/tenants/")
    before = snapshot(world)

    report = await sweeper(world)(apply=True)

    assert report.entries == ()
    assert snapshot(world) == before
    assert untagged.id in cloud.user_pools
    assert set(cloud.methods_called()) == LISTING


async def test_a_dry_run_changes_nothing() -> None:
    world = World()
    seed_orphans(world, "ghost", domain=True, protected=True)
    tenant = await world.active_tenant("gone", "premium")
    mark(world, "gone", TenantStatus.DELETED)
    world.cloud.calls.clear()
    before, registry_before = snapshot(world), copy.deepcopy(world.registry.tenants)

    report = await sweeper(world)(apply=False)

    assert len(report.orphans) == 8 and {e.action for e in report.entries} == {"would delete"}  # 8th: the secret
    assert snapshot(world) == before
    assert world.registry.tenants == registry_before
    assert set(world.cloud.methods_called()) == LISTING
    assert tenant.outputs["user_pool_id"] in world.cloud.user_pools


async def test_apply_lifts_protection_and_removes_the_domain_of_an_orphan_pool() -> None:
    world = World()
    ids = seed_orphans(world, "ghost", domain=True, protected=True)

    report = await sweeper(world)(apply=True)

    assert {e.action for e in report.entries} == {"deleted"}
    assert world.cloud.is_empty()
    pool_calls = [c.method for c in world.cloud.calls if c.kwargs.get("pool_id") == ids["user_pool"]]
    assert pool_calls == ["delete_domain", "set_deletion_protection", "delete_user_pool"]


async def test_one_failing_delete_is_reported_and_the_sweep_goes_on() -> None:
    world = World()
    first = seed_orphans(world, "ghost-one")
    second = seed_orphans(world, "ghost-two")
    world.cloud.fail(
        "delete_identity_pool",
        CloudError("AccessDeniedException", "not authorized"),
        when=lambda kw: kw["identity_pool_id"] == first["identity_pool"],
    )

    report = await sweeper(world)(apply=True)

    actions = {(e.kind, e.id): e.action for e in report.entries}
    assert actions.pop(("identity_pool", first["identity_pool"])) == "failed: AccessDeniedException"
    assert set(actions.values()) == {"deleted"} and len(actions) == 5
    assert [(e.kind, e.id) for e in report.remaining] == [("identity_pool", first["identity_pool"])]
    assert list(world.cloud.identity_pools) == [first["identity_pool"]]
    assert not world.cloud.user_pools and not world.cloud.roles
    assert second["user_pool"] not in world.cloud.user_pools


async def test_a_resource_already_gone_counts_as_deleted() -> None:
    world = World()
    ids = seed_orphans(world, "ghost")

    async def someone_else_deletes_it(**_: Any) -> None:
        del world.cloud.user_pools[ids["user_pool"]]

    world.cloud.before("delete_user_pool", someone_else_deletes_it)

    report = await sweeper(world)(apply=True)

    assert {e.action for e in report.entries} == {"deleted"}
    assert report.remaining == []
    assert world.cloud.count("delete_user_pool") == 1 and world.cloud.is_empty()


async def test_a_tenant_onboarded_during_the_sweep_keeps_what_it_adopts() -> None:
    world = World()
    seed_orphans(world, "late")

    async def onboarded_meanwhile(**_: Any) -> None:
        await world.onboard(TenantSpec(tenant_id="late", tier="basic", display_name="Late"))

    world.cloud.before("delete_role", onboarded_meanwhile)  # after the registry was read

    report = await sweeper(world)(apply=True)

    actions = [(e.kind, e.action) for e in report.entries]
    assert actions == [("iam_role", "deleted"), ("identity_pool", "skipped"), ("user_pool", "skipped")]
    assert report.entries[1].reason == "no longer an orphan: tenant 'late' is provisioning (in progress)"
    assert len(world.cloud.user_pools) == 1 and len(world.cloud.identity_pools) == 1
    assert report.remaining == []


async def test_the_report_is_plain_data() -> None:
    world = World()
    seed_orphans(world, "ghost")

    document = json.loads(json.dumps((await sweeper(world)(apply=False)).to_dict()))

    assert (document["account_id"], document["region"], document["applied"]) == ("123456789012", "us-east-1", False)
    assert (document["orphans"], document["remaining"], document["skipped"]) == (3, 3, 0)
    assert set(document["entries"][0]) == {"kind", "id", "arn", "name", "tenant_id", "reason", "action"}


async def test_the_registry_is_read_page_by_page(monkeypatch: Any) -> None:
    import domain.sweep

    monkeypatch.setattr(domain.sweep, "_REGISTRY_PAGE", 2)
    world = World()
    for tenant_id in ("aaa", "bbb", "ccc", "ddd"):
        await world.active_tenant(tenant_id, "basic")
    mark(world, "ddd", TenantStatus.DELETED)

    report = await sweeper(world)(apply=False)

    assert {e.tenant_id for e in report.entries} == {"ddd"}
    assert len(report.entries) == 3
