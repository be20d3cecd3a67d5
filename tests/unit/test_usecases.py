"""Use cases behind the HTTP API, over the in-memory registry."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput, RegistryUnavailable, TenantConflict, TenantNotFound, UnknownTier
from domain.tenant import JobKind, LastError, TenantSpec, TenantStatus, new_tenant
from domain.tiers import parse_tiers
from tests.unit.fakes import CELL, World, shipped_tiers

S = TenantStatus


def spec(tenant_id: str = "acme", tier: str = "basic", admin_email: str | None = None, name: str = "Acme") -> TenantSpec:
    return TenantSpec(tenant_id=tenant_id, tier=tier, display_name=name, admin_email=admin_email)


def seed(world: World, tenant_id: str, status: TenantStatus, tier: str = "basic") -> None:
    t = new_tenant(spec(tenant_id, tier), CELL, world.clock.now())
    t.status = status
    world.registry.put(t)


# -- the fake registry keeps the promises the use cases rely on -------------------------------------


async def test_registry_changes_are_visible_only_after_commit() -> None:
    world = World()
    t = new_tenant(spec(), CELL, world.clock.now())
    async with world.registry() as uow:
        await uow.tenants.add(t)
        await uow.jobs.enqueue("acme", JobKind.PROVISION, world.clock.now())
        assert await uow.tenants.get("acme") is not None  # read-your-writes inside the transaction
        assert world.registry.tenant("acme") is None
        async with world.registry() as other:
            assert await other.tenants.get("acme") is None
    # Left without commit: nothing happened.
    assert world.registry.tenant("acme") is None and world.registry.jobs_of("acme") == []


async def test_registry_hands_out_copies() -> None:
    world = World()
    seed(world, "acme", S.ACTIVE)
    async with world.registry() as uow:
        t = await uow.tenants.get("acme")
        assert t is not None
        t.status = S.FAILED
        t.outputs["user_pool_id"] = "x"
        await uow.commit()
    assert world.registry.tenant("acme").status is S.ACTIVE  # type: ignore[union-attr]
    assert world.registry.tenant("acme").outputs == {}  # type: ignore[union-attr]


# -- OnboardTenant ------------------------------------------------------------------------------------


async def test_onboard_creates_tenant_and_provision_job_together() -> None:
    world = World()
    outcome = await world.onboard(spec(admin_email="boss@acme.test"))
    assert outcome.changed is True
    assert outcome.tenant.status is S.PROVISIONING
    stored = world.registry.tenant("acme")
    assert stored is not None and stored.spec == spec(admin_email="boss@acme.test")
    assert stored.cell == CELL and stored.created_at == world.clock.now()
    [job] = world.registry.jobs_of("acme")
    assert (job.kind, job.state) == (JobKind.PROVISION, "pending")


async def test_onboard_is_all_or_nothing() -> None:
    world = World()
    world.registry.fail_next("enqueue", RegistryUnavailable("database went away"))
    with pytest.raises(RegistryUnavailable):
        await world.onboard(spec())
    assert world.registry.tenant("acme") is None
    assert world.registry.jobs_of("acme") == []
    # ...and the request can simply be repeated.
    assert (await world.onboard(spec())).changed is True
    assert len(world.registry.jobs_of("acme")) == 1


async def test_same_spec_again_changes_nothing() -> None:
    world = World()
    await world.onboard(spec())
    world.clock.advance(60)
    again = await world.onboard(spec())
    assert again.changed is False
    assert again.tenant.status is S.PROVISIONING
    assert again.tenant.created_at < world.clock.now()
    assert len(world.registry.jobs_of("acme")) == 1


async def test_same_spec_after_activation_returns_the_tenant_as_it_is() -> None:
    world = World()
    await world.active_tenant()
    again = await world.onboard(spec())
    assert again.changed is False and again.tenant.status is S.ACTIVE
    assert again.tenant.outputs["user_pool_id"]


@pytest.mark.parametrize(
    "different",
    [spec(tier="standard"), spec(name="Acme Corp"), spec(admin_email="boss@acme.test")],
    ids=["tier", "display_name", "admin_email"],
)
async def test_different_spec_for_an_existing_id_is_a_conflict(different: TenantSpec) -> None:
    world = World()
    await world.onboard(spec())
    with pytest.raises(TenantConflict) as caught:
        await world.onboard(different)
    assert caught.value.status == "provisioning"
    assert world.registry.tenant("acme").spec == spec()  # type: ignore[union-attr]


async def test_deleted_tenant_ids_are_not_reused() -> None:
    world = World()
    seed(world, "acme", S.DELETED)
    for attempt in (spec(), spec(tier="premium")):
        with pytest.raises(TenantConflict) as caught:
            await world.onboard(attempt)
        assert caught.value.status == "deleted"
    assert world.registry.jobs_of("acme") == []


async def test_unknown_tier() -> None:
    world = World()
    with pytest.raises(UnknownTier) as caught:
        await world.onboard(spec(tier="platinum"))
    assert "platinum" in caught.value.message and "basic" in caught.value.message
    assert world.registry.tenant("acme") is None


@pytest.mark.parametrize("tenant_id", ["Acme", "ab", "acme-", "acme--corp", "a" * 41, "acme_corp"])
async def test_bad_tenant_id(tenant_id: str) -> None:
    world = World()
    with pytest.raises(InvalidInput) as caught:
        await world.onboard(spec(tenant_id))
    assert caught.value.field == "tenant_id"
    assert world.registry.tenants == {}


async def test_admin_email_needs_a_tier_with_an_admin_group() -> None:
    data = {
        "tiers": {
            "nogroups": {
                "description": "no groups",
                "authenticated_policy": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/{{tenant_id}}/*"}
                ],
            }
        }
    }
    world = World(tiers=parse_tiers(data))
    with pytest.raises(InvalidInput) as caught:
        await world.onboard(spec(tier="nogroups", admin_email="boss@acme.test"))
    assert caught.value.field == "admin_email"
    assert world.registry.tenants == {}
    assert (await world.onboard(spec(tier="nogroups"))).changed is True


async def _lose_race(world: World, winner: TenantSpec) -> None:
    def concurrent_request_commits_first() -> None:
        world.registry.put(new_tenant(winner, CELL, world.clock.now()))

    world.registry.before("commit", concurrent_request_commits_first)


async def test_losing_a_race_to_an_identical_request_is_not_an_error() -> None:
    world = World()
    await _lose_race(world, spec())
    outcome = await world.onboard(spec())
    assert outcome.changed is False
    assert world.registry.jobs_of("acme") == []  # the loser's job was rolled back with its row


async def test_losing_a_race_to_a_different_request_is_a_conflict() -> None:
    world = World()
    await _lose_race(world, spec(tier="premium"))
    with pytest.raises(TenantConflict):
        await world.onboard(spec())
    assert world.registry.tenant("acme").spec.tier == "premium"  # type: ignore[union-attr]


# -- GetTenant ------------------------------------------------------------------------------------


async def test_get_unknown_tenant() -> None:
    with pytest.raises(TenantNotFound):
        await World().get("nobody")


# -- ListTenants ----------------------------------------------------------------------------------


async def _many(world: World, count: int) -> list[str]:
    ids = [f"t{i:03d}" for i in range(count)]
    for i, tenant_id in enumerate(ids):
        seed(world, tenant_id, S.ACTIVE if i % 2 else S.FAILED, tier="premium" if i % 3 == 0 else "basic")
    return ids


async def test_list_walks_every_tenant_once_in_id_order() -> None:
    world = World()
    ids = await _many(world, 25)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await world.list(status=None, tier=None, limit=10, after=after)
        pages += 1
        seen += [t.tenant_id for t in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ids
    assert pages == 3


async def test_next_after_is_none_on_an_exactly_full_last_page() -> None:
    world = World()
    await _many(world, 20)
    first = await world.list(status=None, tier=None, limit=10, after=None)
    assert first.next_after == "t009"
    last = await world.list(status=None, tier=None, limit=10, after=first.next_after)
    assert len(last.items) == 10
    assert last.next_after is None


async def test_list_filters_by_status_and_tier() -> None:
    world = World()
    await _many(world, 12)
    page = await world.list(status="active", tier="premium", limit=200, after=None)
    assert [t.tenant_id for t in page.items] == ["t003", "t009"]
    assert all(t.status is S.ACTIVE and t.spec.tier == "premium" for t in page.items)
    assert page.next_after is None
    failed = await world.list(status="failed", tier=None, limit=2, after=None)
    assert [t.tenant_id for t in failed.items] == ["t000", "t002"]
    assert failed.next_after == "t002"
    nxt = await world.list(status="failed", tier=None, limit=2, after=failed.next_after)
    assert [t.tenant_id for t in nxt.items] == ["t004", "t006"]


async def test_list_of_nothing() -> None:
    page = await World().list(status=None, tier=None, limit=1, after=None)
    assert page.items == [] and page.next_after is None


@pytest.mark.parametrize("limit", [0, -1, 201, 10_000])
async def test_limit_out_of_bounds(limit: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        await World().list(status=None, tier=None, limit=limit, after=None)
    assert caught.value.field == "limit"


@pytest.mark.parametrize("limit", [1, 200])
async def test_limit_bounds_are_inclusive(limit: int) -> None:
    world = World()
    await _many(world, 3)
    page = await world.list(status=None, tier=None, limit=limit, after=None)
    assert len(page.items) == min(limit, 3)


async def test_unknown_status_filter() -> None:
    with pytest.raises(InvalidInput) as caught:
        await World().list(status="zombie", tier=None, limit=10, after=None)
    assert caught.value.field == "status"


# -- DeleteTenant ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.PROVISIONING, S.ACTIVE, S.FAILED, S.DEPROVISIONING])
async def test_delete_from_every_live_state_queues_a_teardown(status: TenantStatus) -> None:
    world = World()
    seed(world, "acme", status)
    if status in (S.FAILED, S.DEPROVISIONING):
        stored = world.registry.tenant("acme")
        assert stored is not None
        stored.last_error = LastError("LimitExceededException", "quota", "auth_role")
        world.registry.put(stored)
    world.clock.advance(30)
    outcome = await world.delete("acme")
    assert outcome.changed is True
    stored = world.registry.tenant("acme")
    assert stored is not None
    assert stored.status is S.DEPROVISIONING
    assert stored.last_error is None
    assert stored.updated_at == world.clock.now()
    assert [j.kind for j in world.registry.jobs_of("acme")] == [JobKind.DEPROVISION]


async def test_deleting_a_deleted_tenant_changes_nothing() -> None:
    world = World()
    seed(world, "acme", S.DELETED)
    outcome = await world.delete("acme")
    assert outcome.changed is False and outcome.tenant.status is S.DELETED
    assert world.registry.jobs_of("acme") == []


async def test_delete_unknown_tenant() -> None:
    with pytest.raises(TenantNotFound):
        await World().delete("nobody")


# -- RetryTenant ----------------------------------------------------------------------------------


async def test_retry_a_failed_tenant_keeps_its_progress() -> None:
    world = World()
    t = new_tenant(spec(), CELL, world.clock.now())
    t.status = S.FAILED
    t.last_error = LastError("LimitExceededException", "quota", "auth_role_policy")
    t.outputs = {"user_pool_id": "us-east-1_X"}
    t.completed_steps = ["user_pool"]
    world.registry.put(t)
    outcome = await world.retry("acme")
    assert outcome.changed is True
    stored = world.registry.tenant("acme")
    assert stored is not None
    assert stored.status is S.PROVISIONING and stored.last_error is None
    assert stored.outputs == {"user_pool_id": "us-east-1_X"} and stored.completed_steps == ["user_pool"]
    assert [j.kind for j in world.registry.jobs_of("acme")] == [JobKind.PROVISION]


@pytest.mark.parametrize("status", [S.PROVISIONING, S.ACTIVE, S.DEPROVISIONING, S.DELETED])
async def test_retry_only_from_failed(status: TenantStatus) -> None:
    world = World()
    seed(world, "acme", status)
    with pytest.raises(TenantConflict) as caught:
        await world.retry("acme")
    assert caught.value.status == status.value
    assert world.registry.tenant("acme").status is status  # type: ignore[union-attr]
    assert world.registry.jobs_of("acme") == []


async def test_retry_unknown_tenant() -> None:
    with pytest.raises(TenantNotFound):
        await World().retry("nobody")


async def test_retry_when_the_tier_was_removed() -> None:
    tiers = shipped_tiers()
    world = World(tiers={k: v for k, v in tiers.items() if k != "premium"})
    seed(world, "acme", S.FAILED, tier="premium")
    with pytest.raises(UnknownTier):
        await world.retry("acme")
    assert world.registry.tenant("acme").status is S.FAILED  # type: ignore[union-attr]
