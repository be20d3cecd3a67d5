"""Provisioning a tier with several app clients, resource servers, extra roles and a role
mapping (docs/examples/tiers-full.toml) over the fakes: what is created, in what order, and that
a crash between an AWS create and its registry write leaves nothing behind after teardown."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.naming import ResourceNames, ownership_tags
from domain.provisioning import TEARDOWN_STEPS, Gateways, provisioning_steps
from domain.sweep import SweepOrphans
from domain.tenant import TenantStatus as S
from domain.tiers import parse_tiers
from tests.unit.fakes import CELL, World, shipped_tiers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
NAMES = ResourceNames("tenants", "acme")


def world() -> World:
    return World(tiers={**shipped_tiers(), **parse_tiers(tomllib.loads(EXAMPLE.read_text()))})


def test_the_plan_puts_resource_servers_before_the_clients_that_use_their_scopes() -> None:
    steps = {s.name: s.after for s in provisioning_steps(world().tiers["enterprise"], with_admin=True)}
    assert steps["resource_servers"] == ("user_pool",)
    assert steps["app_client"] == ("user_pool", "resource_servers")  # web reads the API's scope
    assert steps["app_clients"] == ("user_pool", "resource_servers")
    assert steps["client_secret"] == ("app_clients",)  # only machine and mobile have secrets
    assert steps["identity_pool"] == ("app_client",)  # it trusts web only
    assert steps["extra_roles"] == ("identity_pool",)
    assert steps["group_roles"] == ("groups", "extra_roles")
    assert set(steps["identity_pool_roles"]) == {"auth_role_policy", "unauth_role_policy", "extra_roles"}
    # A single-client tier keeps its old plan.
    assert "app_clients" not in {s.name for s in provisioning_steps(shipped_tiers()["premium"], with_admin=True)}


async def test_a_full_template_tenant_gets_every_client_secret_role_and_mapping() -> None:
    w = world()
    await w.onboard_spec("acme", "enterprise", admin_email="boss@acme.test", display_name="Acme Corp")
    assert await w.provision("acme") is S.ACTIVE
    tenant = w.registry.tenant("acme")
    assert tenant is not None
    [pool] = w.cloud.pools_named(NAMES.user_pool)
    by_name = {c["name"]: cid for cid, c in pool.clients.items()}
    assert set(by_name) == {NAMES.app_client, f"{NAMES.app_client}-machine", f"{NAMES.app_client}-mobile"}
    resources = tenant.public_resources()
    assert resources["app_client_id"] == by_name[NAMES.app_client]
    assert resources["app_clients"] == {
        "web": by_name[NAMES.app_client],
        "machine": by_name[f"{NAMES.app_client}-machine"],
        "mobile": by_name[f"{NAMES.app_client}-mobile"],
    }
    assert set(resources["app_client_secret_arns"]) == {"machine", "mobile"}
    assert resources["app_client_secret_arn"] is None  # the primary client (web) is public
    assert {s.name for s in w.cloud.secrets.values()} == {
        "tenants/acme/app-client/machine/secret",
        "tenants/acme/app-client/mobile/secret",
    }
    assert set(pool.resource_servers) == {"https://api.example.com"}
    admins = w.cloud.role(NAMES.extra_role("admins"))
    assert admins is not None and pool.group_roles == {"admins": admins.arn}
    assert admins.tags["cost-center"] == "identity" and admins.tags["tenants:tenant-id"] == "acme"
    [ipool] = w.cloud.identity_pools_named(NAMES.identity_pool)
    [set_roles] = w.cloud.calls_to("set_roles")
    mappings = set_roles.kwargs["role_mappings"]
    assert list(mappings) == [f"{ipool.provider_name}:{by_name[NAMES.app_client]}"]
    [mapping] = mappings.values()
    assert [r["RoleARN"] for r in mapping["RulesConfiguration"]["Rules"]] == [
        admins.arn,
        w.cloud.role(NAMES.extra_role("editors")).arn,  # type: ignore[union-attr]
    ]
    [create_user] = w.cloud.calls_to("create_user")
    assert create_user.kwargs["attributes"] == {"custom:tenant_id": "acme"}
    [create_pool] = w.cloud.calls_to("create_user_pool")
    assert create_pool.kwargs["tags"]["environment"] == "production"

    await w.delete("acme")
    assert await w.deprovision("acme") is S.DELETED
    assert w.cloud.is_empty()
    assert {s.name for s in TEARDOWN_STEPS} >= {"delete_extra_roles", "delete_client_secret"}


async def test_secrets_and_roles_created_just_before_a_crash_are_torn_down_by_name() -> None:
    w = world()
    await w.onboard_spec("acme", "enterprise", admin_email="boss@acme.test")
    # The second secret and an extra role are made, but their responses never arrive: nothing
    # about them reaches the registry.
    w.cloud.lose_response("put_client_secret", on_call=2)
    w.cloud.lose_response("put_role_policy", when=lambda kw: kw["role_name"] == NAMES.extra_role("editors"))
    assert await w.provision("acme") is S.FAILED
    tenant = w.registry.tenant("acme")
    assert tenant is not None and "app_client_secret_arns" not in tenant.outputs and "extra_role_arns" not in tenant.outputs
    assert len(w.cloud.secrets) == 2 and w.cloud.role(NAMES.extra_role("editors")) is not None

    await w.delete("acme")
    assert await w.deprovision("acme") is S.DELETED
    assert w.cloud.is_empty()


async def test_a_retry_after_a_lost_client_create_adopts_the_client() -> None:
    w = world()
    await w.onboard_spec("acme", "enterprise")
    w.cloud.lose_response("create_app_client", when=lambda kw: kw["name"].endswith("-machine"))
    assert await w.provision("acme") is S.FAILED
    await w.retry("acme")
    assert await w.provision("acme") is S.ACTIVE
    [pool] = w.cloud.pools_named(NAMES.user_pool)
    assert sorted(c["name"] for c in pool.clients.values()) == sorted(
        [NAMES.app_client, f"{NAMES.app_client}-machine", f"{NAMES.app_client}-mobile"]
    )


async def test_the_sweep_keeps_an_active_tenants_extra_roles_and_secrets_and_deletes_a_deleted_ones() -> None:
    w = world()
    await w.onboard_spec("acme", "enterprise")
    assert await w.provision("acme") is S.ACTIVE
    await w.onboard_spec("gone", "enterprise")
    assert await w.provision("gone") is S.ACTIVE
    gone = w.registry.tenant("gone")
    assert gone is not None
    gone.status = S.DELETED  # as if the tombstone was written and the teardown lost
    w.registry.put(gone)
    sweep = SweepOrphans(
        Gateways(user_pools=w.cloud, identity_pools=w.cloud, iam=w.cloud, secrets=w.cloud), w.registry, CELL, w.settings
    )

    report = await sweep(apply=True)

    assert {e.tenant_id for e in report.entries} == {"gone"}
    gone_names = ResourceNames("tenants", "gone")
    deleted = {(e.kind, e.name) for e in report.entries if e.action == "deleted"}
    assert {
        ("iam_role", gone_names.extra_role("admins")),
        ("iam_role", gone_names.extra_role("editors")),
        ("secret", "tenants/gone/app-client/machine/secret"),
        ("secret", "tenants/gone/app-client/mobile/secret"),
    } <= deleted
    assert report.remaining == []
    # Everything of the active tenant stays.
    assert w.cloud.role(NAMES.extra_role("admins")) is not None
    assert {s.name for s in w.cloud.secrets.values()} == {
        "tenants/acme/app-client/machine/secret",
        "tenants/acme/app-client/mobile/secret",
    }


def test_extra_role_and_client_secret_names_are_recognised_only_for_their_tenant() -> None:
    acme, other = ResourceNames("tenants", "acme"), ResourceNames("tenants", "acme-x")
    assert acme.extra_role_of("tenants-acme-editors") == "editors"
    assert acme.extra_role_of("TENANTS-ACME-EDITORS") == "editors"  # IAM names are case-insensitive
    assert acme.extra_role_of("tenants-acme-auth") is None and other.extra_role_of("tenants-acme-editors") is None
    longest = ResourceNames("p" * 16, "t" + "x" * 39)
    assert longest.extra_role_of(longest.extra_role("admins")) == "admins"
    assert acme.client_of_secret("tenants/acme/app-client/machine/secret") == "machine"
    assert acme.client_of_secret("tenants/acme/app-client/secret") is None
    assert other.client_of_secret("tenants/acme/app-client/machine/secret") is None


async def test_an_adopted_pool_made_before_custom_tenant_id_still_gets_its_admin_user() -> None:
    """A pool made by an earlier release has no custom:tenant_id. Adoption never changes a pool's
    schema, so the admin user is created without the attribute instead of failing."""
    w = world()
    await w.onboard_spec("acme", "standard", admin_email="boss@acme.test")
    pool = w.cloud.seed_user_pool(NAMES.user_pool, tags=ownership_tags("acme"))
    pool.tenant_id_attribute = False
    assert await w.provision("acme") is S.ACTIVE
    [create_user] = w.cloud.calls_to("create_user")
    assert create_user.kwargs["attributes"] == {}
    tenant = w.registry.tenant("acme")
    assert tenant is not None and tenant.outputs["tenant_id_attribute"] is False


async def test_client_secrets_do_not_wait_for_a_public_primary_client() -> None:
    """The enterprise plan stores the secrets of the extra clients once `app_clients` is done,
    with no edge to `app_client` (web, public). The primary's create finishing last must not
    fail the secret step (it read the primary's id, not yet recorded: KeyError, seen in CI)."""
    import asyncio
    import contextlib

    w = world()
    primary_done = asyncio.Event()
    extras_done = asyncio.Event()

    async def slow_primary(**kwargs: object) -> None:
        if kwargs.get("name") == NAMES.app_client:  # the primary (web) client
            # Bounded, so that a plan that fails instead of storing the secrets ends the test.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(extras_done.wait(), 5)
            primary_done.set()
        else:
            await asyncio.sleep(0)

    for _ in range(3):  # one hook per create: web, machine, mobile, in whatever order they come
        w.cloud.before("create_app_client", slow_primary)
    original = w.cloud.put_client_secret

    async def note_secret(*args: object, **kwargs: object) -> object:
        extras_done.set()  # the secret step runs while the primary's create still waits
        return await original(*args, **kwargs)

    w.cloud.put_client_secret = note_secret  # type: ignore[method-assign]
    await w.onboard_spec("acme", "enterprise", admin_email="boss@acme.test", display_name="Acme Corp")
    assert await w.provision("acme") is S.ACTIVE
    assert primary_done.is_set()
    resources = w.registry.tenant("acme").public_resources()  # type: ignore[union-attr]
    assert set(resources["app_client_secret_arns"]) == {"machine", "mobile"}
