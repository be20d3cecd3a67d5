"""The table of resource kinds (domain/provisioning/resources.py) and the plans derived from it:
every kind, run on its own over the fakes, converges (run again, it changes nothing), is torn
down by its delete or with the resource it is part of, and a new kind is one entry."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from domain.plan import validate_plan
from domain.provisioning import PLANS, RESOURCES, Plans, Resource, Scope, TenantOutputs, TenantRun
from domain.provisioning.outputs import OUTPUT_KEYS
from domain.provisioning.runner import DeprovisionTenant, ProvisionTenant, UpdateTenantSettings
from domain.tenant import SettingsStatus, TenantSpec
from domain.tenant import TenantStatus as S
from domain.tenant_settings import parse_settings
from domain.tiers import parse_tiers
from tests.unit.fakes import World, shipped_tiers
from tests.unit.test_tenant_update import OIDC

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
FULL = {"identity_providers": {"acme-oidc": OIDC}, "tags": {"cost-center": "cc-1"}}


def tiers() -> dict[str, Any]:
    return {**shipped_tiers(), **parse_tiers(tomllib.loads(EXAMPLE.read_text()))}


async def full_tenant(world: World) -> None:
    """The widest plan: the full example tier, an admin and an identity provider with a secret."""
    parsed = parse_settings(FULL)
    spec = TenantSpec("acme", "enterprise", "Acme", admin_email="boss@acme.test", settings=parsed.settings)
    await world.onboard(spec, parsed.secrets)
    assert await world.provision("acme") is S.ACTIVE


def snapshot(world: World) -> dict[str, Any]:
    """What the fake cloud holds, without the history a put adds (a secret's older versions)."""
    secrets = {
        name: {**dataclasses.asdict(s), "versions": s.versions[-1:]} for name, s in world.cloud.secrets.items()
    }
    return copy.deepcopy(
        {
            "user_pools": {k: dataclasses.asdict(v) for k, v in world.cloud.user_pools.items()},
            "identity_pools": {k: dataclasses.asdict(v) for k, v in world.cloud.identity_pools.items()},
            "roles": {k: dataclasses.asdict(v) for k, v in world.cloud.roles.items()},
            "domains": dict(world.cloud.domains),
            "secrets": secrets,
        }
    )


def run_of(world: World) -> TenantRun:
    tenant = world.registry.tenant("acme")
    assert tenant is not None
    gateways = world.provision._gateways  # the fakes the world wired
    return TenantRun(tenant, world.tiers[tenant.spec.tier], gateways, world.settings)


FULL_PLAN = [s.name for s in PLANS.steps(Scope(tiers()["enterprise"], with_admin=True, has_identity_providers=True))]


def test_the_widest_plan_holds_every_resource_kind_of_the_table() -> None:
    assert FULL_PLAN == [entry.name for entry in RESOURCES]


def test_every_plan_of_every_tier_is_valid_and_picks_its_dependencies_among_the_declared_ones() -> None:
    for template in tiers().values():
        for with_admin in (False, True):
            for idps in (False, True):
                scope = Scope(template, with_admin=with_admin, has_identity_providers=idps)
                validate_plan(PLANS.steps(scope))
                for entry in RESOURCES:
                    assert set(entry.deps(scope)) <= set(entry.after), entry.name


@pytest.mark.parametrize("name", FULL_PLAN)
async def test_each_kind_run_again_on_a_provisioned_tenant_changes_nothing(name: str) -> None:
    world = World(tiers=tiers())
    await full_tenant(world)
    before, run = snapshot(world), run_of(world)
    recorded = dict(run.outputs)
    outputs = await PLANS.handlers[name](run)
    assert snapshot(world) == before, f"{name} changed the cloud when run again"
    assert {k: v for k, v in outputs.items() if k in recorded} == {k: recorded[k] for k in outputs if k in recorded}
    assert set(outputs) <= OUTPUT_KEYS


@pytest.mark.parametrize("entry", [e for e in RESOURCES if e.delete is not None], ids=lambda e: e.name)
async def test_each_delete_removes_its_kind_clears_its_outputs_and_can_run_twice(entry: Resource) -> None:
    world = World(tiers=tiers())
    await full_tenant(world)
    handler = PLANS.handlers[entry.teardown_step]
    # The kinds part of this one go with it (the user pool's clients, groups, users ...).
    cleared = PLANS.cleared_by(entry)
    # Teardown order: what depends on this entry goes first.
    for step in PLANS.teardown:
        if step.name == entry.teardown_step:
            break
        await PLANS.handlers[step.name](run_of(world))
    outputs = await handler(run_of(world))
    assert set(cleared) <= set(outputs) and all(outputs[k] is None for k in cleared)  # type: ignore[literal-required]
    after_first = snapshot(world)
    await handler(run_of(world))
    assert snapshot(world) == after_first  # gone counts as deleted


async def test_a_teardown_in_table_order_leaves_nothing_and_no_output_of_any_kind() -> None:
    world = World(tiers=tiers())
    await full_tenant(world)
    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED
    assert world.cloud.is_empty()
    tenant = world.registry.tenant("acme")
    assert tenant is not None
    declared = {key for entry in RESOURCES for key in entry.outputs}
    assert not declared & set(tenant.outputs)


def test_teardown_is_the_reverse_of_the_dependencies() -> None:
    after = {s.name: set(s.after) for s in PLANS.teardown}
    assert after["delete_identity_pool"] >= {"delete_auth_role", "delete_unauth_role", "delete_extra_roles"}
    assert after["delete_user_pool"] >= {"delete_identity_pool", "delete_hosted_ui_domain", "delete_client_secret"}
    assert after["delete_auth_role"] == set()


# -- a new kind is one entry -----------------------------------------------------------------------

LOG: list[str] = []


async def _create_log(run: TenantRun) -> TenantOutputs:
    assert run.outputs.get("user_pool_id"), "made after the user pool"
    LOG.append("create")
    return {}


async def _update_log(run: TenantRun) -> TenantOutputs:
    LOG.append("update")
    return {}


async def _delete_log(run: TenantRun) -> TenantOutputs:
    assert run.outputs.get("user_pool_id"), "deleted before the user pool"
    LOG.append("delete")
    return {}


async def test_a_new_resource_kind_is_one_entry_and_every_operation_picks_it_up() -> None:
    LOG.clear()
    entry = Resource(
        "log_delivery", create=_create_log, after=("user_pool",), update=_update_log, delete=_delete_log
    )
    plans = Plans((*RESOURCES, entry))
    assert ("log_delivery", ("user_pool",)) in [(s.name, s.after) for s in plans.steps(Scope(tiers()["basic"]))]
    assert "delete_log_delivery" in {d for s in plans.teardown if s.name == "delete_user_pool" for d in s.after}
    world = World(tiers=tiers())
    args = (world.registry, world.provision._gateways, world.tiers, world.clock, world.settings, world.observer)
    await world.onboard_spec("acme", "basic")
    assert await ProvisionTenant(*args, plans=plans)("acme") is S.ACTIVE
    await world.update("acme", {"tags": {"team": "blue"}})
    assert await UpdateTenantSettings(*args, plans=plans)("acme") is SettingsStatus.APPLIED
    await world.delete("acme")
    assert await DeprovisionTenant(*args, plans=plans)("acme") is S.DELETED
    assert LOG == ["create", "update", "delete"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Resource("x", create=_create_log, after=("nowhere",), delete=_delete_log), "not listed before it"),
        (Resource("user_pool", create=_create_log, delete=_delete_log), "twice"),
        (Resource("x", create=_create_log, after=("user_pool",)), "teardown would leak it"),
        (Resource("x", create=_create_log, delete=_delete_log, outputs=("no_such_key",)), "not in TenantOutputs"),
    ],
)
def test_a_table_that_would_misbehave_is_refused_naming_the_entry(bad: Resource, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Plans((*RESOURCES, bad))
