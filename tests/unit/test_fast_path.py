"""The fast path of domain/provisioning.py: the first run of a fresh tenant creates without looking.

Every other run (resumed after a crash or a lost lease, a retry of a failed tenant, a run without
a job) and every step retried after an error still looks first: never duplicated, never orphaned.
"""

from __future__ import annotations

import pytest

from domain.errors import CloudError, ResourceNotOwned
from domain.naming import ResourceNames
from domain.ports import Job
from domain.provisioning import LeaseLost, ProvisioningSettings
from domain.tenant import TenantStatus
from tests.unit.fakes import World
from tests.unit.test_provisioning import ADMIN, assert_one_of_each, quota_error, stored

S = TenantStatus
NAMES = ResourceNames("tenants", "acme")
LOOKUPS = ("find_user_pool", "find_app_client", "find_identity_pool", "get_role", "user_exists")
LEASE_S = 60.0


async def claim(world: World) -> Job:
    async with world.registry() as uow:
        job = await uow.jobs.claim("worker-1", world.clock.now(), LEASE_S)
        await uow.commit()
    assert job is not None
    return job


def lookups(world: World) -> dict[str, int]:
    return {method: world.cloud.count(method) for method in LOOKUPS}


@pytest.mark.parametrize("tier", ["basic", "standard", "premium"])
async def test_the_first_run_of_a_fresh_tenant_makes_no_lookups(tier: str) -> None:
    world = World()
    await world.onboard_spec("acme", tier, admin_email=ADMIN)
    job = await claim(world)
    assert (job.attempts, job.first_for_tenant) == (1, True)

    assert await world.provision("acme", job) is S.ACTIVE
    assert lookups(world) == dict.fromkeys(LOOKUPS, 0)
    assert_one_of_each(world, tier)
    assert stored(world).outputs["admin_username"]
    if tier == "premium":
        # The hosted-UI domain keeps its look-up: a prefix domain can be held by another account.
        assert world.cloud.count("domain_owner") == 1


async def test_a_run_without_a_job_looks_first() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    assert await world.provision("acme") is S.ACTIVE
    assert world.cloud.count("find_user_pool") >= 1 and world.cloud.count("get_role") >= 1


async def test_a_run_resumed_after_losing_its_lease_looks_first_and_adopts() -> None:
    world = World()
    await world.onboard_spec("acme", "premium")
    first = await claim(world)
    # The pool is created, then the run dies before recording it (as a SIGKILL would).
    world.cloud.lose_response("create_user_pool", error=LeaseLost("acme"))
    assert await world.provision("acme", first) is None
    assert len(world.cloud.pools_named(NAMES.user_pool)) == 1 and stored(world).outputs == {}

    world.clock.advance(LEASE_S + 1)  # the lease runs out; another worker takes the job over
    second = await claim(world)
    assert (second.id, second.attempts, second.first_for_tenant) == (first.id, 2, False)
    assert await world.provision("acme", second) is S.ACTIVE
    assert world.cloud.count("find_user_pool") >= 1
    assert_one_of_each(world, "premium")


async def test_a_step_retried_after_a_lost_response_looks_first() -> None:
    world = World(settings=ProvisioningSettings(step_attempts=3, step_backoff_s=0.0))
    await world.onboard_spec("acme", "premium")
    job = await claim(world)
    world.cloud.lose_response("create_user_pool")  # created, the answer lost: a retryable error
    world.cloud.lose_response("create_identity_pool")
    assert await world.provision("acme", job) is S.ACTIVE
    assert_one_of_each(world, "premium")
    # The retried steps looked (and adopted); the others still went straight to creating.
    assert world.cloud.count("find_user_pool") >= 1 and world.cloud.count("find_identity_pool") >= 1
    assert world.cloud.count("find_app_client") == 0 and world.cloud.count("get_role") == 0


async def test_retrying_a_tenant_that_failed_before_recording_anything_adopts() -> None:
    # The worst case for the fast path: the first run created a pool, lost the answer, failed for
    # good and recorded nothing; the retry's job is attempt 1 of its own, and the clock has not
    # moved. It must still look, because its job is not the tenant's first.
    world = World()
    await world.onboard_spec("acme", "basic")
    world.cloud.lose_response("create_user_pool", error=quota_error())
    first = await claim(world)
    assert await world.provision("acme", first) is S.FAILED
    assert stored(world).outputs == {} and len(world.cloud.pools_named(NAMES.user_pool)) == 1
    async with world.registry() as uow:
        await uow.jobs.complete(first, world.clock.now())  # as the worker does
        await uow.commit()

    await world.retry("acme")
    retry_job = await claim(world)
    assert (retry_job.attempts, retry_job.first_for_tenant) == (1, False)
    assert await world.provision("acme", retry_job) is S.ACTIVE
    assert len(world.cloud.pools_named(NAMES.user_pool)) == 1
    assert world.cloud.count("find_user_pool") >= 1


async def test_a_foreign_pool_with_our_name_is_left_alone() -> None:
    world = World()
    foreign = world.cloud.seed_user_pool(NAMES.user_pool, tags={"owner": "someone-else"})
    await world.onboard_spec("acme", "basic")
    assert await world.provision("acme", await claim(world)) is S.ACTIVE
    ours = stored(world).outputs["user_pool_id"]
    assert ours != foreign.id
    assert foreign.tags == {"owner": "someone-else"} and not foreign.clients


async def test_a_foreign_role_with_our_name_is_still_not_adopted() -> None:
    world = World()
    world.cloud.seed_role(NAMES.role("auth"), tags={"owner": "someone-else"})
    await world.onboard_spec("acme", "basic")
    assert await world.provision("acme", await claim(world)) is S.FAILED
    error = stored(world).last_error
    assert error is not None and error.step == "auth_role" and error.code == ResourceNotOwned("x").code
    assert world.cloud.role(NAMES.role("auth")).tags == {"owner": "someone-else"}  # type: ignore[union-attr]


async def test_retryable_failure_of_a_create_is_retried_looking_first() -> None:
    world = World(settings=ProvisioningSettings(step_attempts=2, step_backoff_s=0.0))
    await world.onboard_spec("acme", "basic")
    world.cloud.fail("create_app_client", CloudError("TooManyRequestsException", "Rate exceeded", retryable=True))
    assert await world.provision("acme", await claim(world)) is S.ACTIVE
    assert world.cloud.count("find_app_client") == 1 and world.cloud.count("find_user_pool") == 0
