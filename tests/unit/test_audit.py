"""The audit trail's domain side, on the fakes: one event per finished step, written with the
step's outputs, one per finished run, and the paged listing behind GET /v1/tenants/{id}/events."""

from __future__ import annotations

import pytest

from domain.audit import AuditEvent
from domain.errors import CloudError, InvalidInput, RegistryUnavailable, TenantNotFound
from domain.provisioning import TEARDOWN_STEPS, provisioning_steps
from domain.tenant import TenantStatus
from domain.usecases import ListTenantEvents, RecordAuditEvent
from tests.unit.fakes import World

S = TenantStatus


def quota_error() -> CloudError:
    return CloudError("LimitExceededException", "You have reached the quota", retryable=False)


def actions(world: World, tenant_id: str = "acme") -> list[str]:
    return [e.action for e in world.registry.events_of(tenant_id)]


async def claim(world: World, worker_id: str) -> object:
    async with world.registry() as uow:
        job = await uow.jobs.claim(worker_id, world.clock.now(), 30)
        await uow.commit()
    assert job is not None
    return job


async def test_provisioning_records_each_step_then_active_in_dependency_order() -> None:
    world = World()
    await world.onboard_spec("acme", "standard", admin_email="boss@acme.test")
    job = await claim(world, "host:1:abc")
    assert await world.provision("acme", job) is S.ACTIVE  # type: ignore[arg-type]

    events = world.registry.events_of("acme")
    steps = provisioning_steps(world.tiers["standard"], with_admin=True)
    assert events and events[-1].action == "tenant.active"
    step_events = [e.action.removeprefix("step.") for e in events[:-1]]
    assert sorted(step_events) == sorted(s.name for s in steps)
    position = {name: i for i, name in enumerate(step_events)}
    for step in steps:  # a step's event comes after the events of the steps it needs
        assert all(position[dep] < position[step.name] for dep in step.after), step
    for event in events:
        assert event.actor == "worker:host:1:abc"
        assert event.outcome == "ok" and event.request_id is None
        assert event.detail["operation"] == "provision"
    assert all(e.detail["duration_ms"] >= 0 for e in events[:-1])
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_a_run_without_a_job_is_recorded_as_the_system() -> None:
    world = World()
    await world.active_tenant("acme")
    assert {e.actor for e in world.registry.events_of("acme")} == {"system"}


async def test_a_failed_step_is_named_by_tenant_failed_and_has_no_step_event() -> None:
    world = World()
    world.cloud.fail("create_identity_pool", quota_error())
    await world.onboard_spec("acme", "basic")
    assert await world.provision("acme") is S.FAILED

    events = world.registry.events_of("acme")
    assert "step.identity_pool" not in [e.action for e in events]
    assert {"step.user_pool", "step.app_client"} <= {e.action for e in events}
    last = events[-1]
    assert (last.action, last.outcome) == ("tenant.failed", "error")
    assert last.detail == {"operation": "provision", "code": "LimitExceededException", "step": "identity_pool"}


async def test_a_step_event_is_written_in_the_steps_transaction() -> None:
    """When the registry write of a step's outputs fails, its event is not recorded either."""
    world = World()
    await world.onboard_spec("acme", "basic")
    world.registry.fail_next("commit", RegistryUnavailable("database is locked"))
    assert await world.provision("acme") is S.FAILED  # the first step's write was lost

    tenant = world.registry.tenant("acme")
    assert tenant is not None and tenant.completed_steps == []
    assert actions(world) == ["tenant.failed"]


async def test_teardown_records_each_step_then_deleted() -> None:
    world = World()
    await world.active_tenant("acme")
    before = len(world.registry.events_of("acme"))
    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED

    teardown = world.registry.events_of("acme")[before:]
    assert sorted(e.action for e in teardown[:-1]) == sorted(f"step.{s.name}" for s in TEARDOWN_STEPS)
    assert teardown[-1].action == "tenant.deleted" and teardown[-1].outcome == "ok"
    assert {e.detail["operation"] for e in teardown} == {"deprovision"}


async def test_a_failed_teardown_is_recorded_as_such() -> None:
    world = World()
    await world.active_tenant("acme")
    world.cloud.fail("delete_identity_pool", quota_error())
    await world.delete("acme")
    assert await world.deprovision("acme") is S.DEPROVISIONING

    last = world.registry.events_of("acme")[-1]
    assert (last.action, last.outcome) == ("tenant.teardown_failed", "error")
    assert last.detail["step"] == "delete_identity_pool"


async def test_a_superseded_run_records_nothing_more() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    await world.delete("acme")  # DELETE before the worker started: provisioning has nothing to do
    assert await world.provision("acme") is None
    assert actions(world) == []


# -- listing -----------------------------------------------------------------------------------


async def test_events_are_listed_oldest_first_in_pages() -> None:
    world = World()
    await world.active_tenant("acme")
    await world.active_tenant("other")
    listing = ListTenantEvents(world.registry)
    everything = world.registry.events_of("acme")

    seen: list[AuditEvent] = []
    after = None
    while True:
        page = await listing("acme", limit=2, after_id=after)
        assert len(page.items) <= 2
        seen += page.items
        if page.next_after_id is None:
            break
        after = page.next_after_id
    assert seen == everything and {e.tenant_id for e in seen} == {"acme"}


async def test_an_id_the_registry_never_had_is_not_found_even_with_refused_requests_recorded() -> None:
    world = World()
    listing = ListTenantEvents(world.registry)
    with pytest.raises(TenantNotFound):
        await listing("ghost", limit=10, after_id=None)

    # A refused request about an id that never existed is recorded, but the id is still unknown:
    # like GET /v1/tenants/ghost, its events are a 404.
    refused = AuditEvent("ghost", world.clock.now(), "key_x", "tenant.delete", "refused", {"status": 404})
    await RecordAuditEvent(world.registry)(refused)
    assert world.registry.events_of("ghost") != []
    for after_id in (None, 0):
        with pytest.raises(TenantNotFound):
            await listing("ghost", limit=10, after_id=after_id)


async def test_a_deleted_tenant_keeps_its_events() -> None:
    world = World()
    await world.active_tenant("acme")
    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED
    page = await ListTenantEvents(world.registry)("acme", limit=200, after_id=None)
    assert page.items == world.registry.events_of("acme") != []
    # Past the last event: an empty page, not a 404.
    assert (await ListTenantEvents(world.registry)("acme", limit=10, after_id=page.items[-1].id)).items == []


async def test_a_tenant_without_events_lists_empty() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")  # requests are recorded by the service, not here
    page = await ListTenantEvents(world.registry)("acme", limit=10, after_id=None)
    assert page.items == [] and page.next_after_id is None


@pytest.mark.parametrize("limit", [0, 201])
async def test_page_size_is_bounded(limit: int) -> None:
    with pytest.raises(InvalidInput):
        await ListTenantEvents(World().registry)("acme", limit=limit, after_id=None)
