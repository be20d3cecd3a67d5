"""TENANTS_ROLE_PERMISSIONS_BOUNDARY: every tenant role is created inside the configured boundary,
and a role adopted from an earlier attempt (or an earlier setting) is re-bound to it."""

from __future__ import annotations

import pytest

from domain.naming import ResourceNames, is_valid_iam_policy_arn, ownership_tags
from domain.provisioning import ProvisioningSettings
from service.settings import SettingsError, load_settings
from tests.unit.fakes import World

BOUNDARY = "arn:aws:iam::123456789012:policy/tenant-roles-boundary"
OLD_BOUNDARY = "arn:aws:iam::123456789012:policy/old-boundary"
NAMES = ResourceNames("tenants", "acme")


def world(boundary: str | None) -> World:
    return World(settings=ProvisioningSettings(step_attempts=1, step_backoff_s=0.0, permissions_boundary=boundary))


async def test_every_role_of_the_tenant_is_created_inside_the_boundary() -> None:
    w = world(BOUNDARY)
    tenant = await w.active_tenant("acme", "premium")
    for kind in ("auth", "unauth"):
        role = w.cloud.role(NAMES.role(kind))
        assert role is not None and role.permissions_boundary == BOUNDARY
    assert tenant.outputs["authenticated_role_arn"].startswith("arn:aws:iam::")
    assert w.cloud.count("set_permissions_boundary") == 0  # created with it: nothing to re-bind


async def test_without_a_boundary_roles_have_none() -> None:
    w = world(None)
    await w.active_tenant("acme", "basic")
    role = w.cloud.role(NAMES.role("auth"))
    assert role is not None and role.permissions_boundary is None


@pytest.mark.parametrize("existing", [None, OLD_BOUNDARY], ids=["unbounded", "other-boundary"])
async def test_an_adopted_role_is_rebound_to_the_configured_boundary(existing: str | None) -> None:
    w = world(BOUNDARY)
    seeded = w.cloud.seed_role(NAMES.role("auth"), tags=ownership_tags("acme"), path="/tenants/")
    seeded.permissions_boundary = existing
    await w.active_tenant("acme", "basic")
    role = w.cloud.role(NAMES.role("auth"))
    assert role is not None and role.permissions_boundary == BOUNDARY
    assert w.cloud.count("create_role") == 0 and w.cloud.count("set_permissions_boundary") == 1


async def test_an_adopted_role_already_inside_the_boundary_is_left_alone() -> None:
    w = world(BOUNDARY)
    w.cloud.seed_role(NAMES.role("auth"), tags=ownership_tags("acme")).permissions_boundary = BOUNDARY
    await w.active_tenant("acme", "basic")
    assert w.cloud.count("set_permissions_boundary") == 0


async def test_without_a_boundary_configured_an_adopted_roles_boundary_is_kept() -> None:
    # Removing a boundary would widen what the role can do; the service never does.
    w = world(None)
    w.cloud.seed_role(NAMES.role("auth"), tags=ownership_tags("acme")).permissions_boundary = OLD_BOUNDARY
    await w.active_tenant("acme", "basic")
    role = w.cloud.role(NAMES.role("auth"))
    assert role is not None and role.permissions_boundary == OLD_BOUNDARY
    assert w.cloud.count("set_permissions_boundary") == 0


async def test_a_foreign_role_is_not_rebound() -> None:
    w = world(BOUNDARY)
    w.cloud.seed_role(NAMES.role("auth"), tags={"team": "data"})
    await w.onboard_spec("acme", "basic")
    await w.provision("acme")
    tenant = w.registry.tenant("acme")
    assert tenant is not None and tenant.status.value == "failed"
    assert w.cloud.count("set_permissions_boundary") == 0


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:policy/b",
        "arn:aws-us-gov:iam::123456789012:policy/boundaries/tenant-roles",
        "arn:aws-cn:iam::123456789012:policy/b",
    ],
)
def test_the_setting_accepts_a_policy_arn(arn: str) -> None:
    assert is_valid_iam_policy_arn(arn)
    assert load_settings(role_permissions_boundary=arn).role_permissions_boundary == arn


@pytest.mark.parametrize(
    "arn",
    [
        "*",
        "tenant-roles-boundary",
        "arn:aws:iam::123456789012:role/tenants/x",
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::12345:policy/b",
        "arn:aws:iam::*:policy/b",
        "arn:aws:iam::123456789012:policy/",
        "arn:aws:s3:::bucket",
    ],
)
def test_the_setting_refuses_anything_but_a_policy_arn(arn: str) -> None:
    with pytest.raises(SettingsError, match="TENANTS_ROLE_PERMISSIONS_BOUNDARY"):
        load_settings(role_permissions_boundary=arn)


def test_the_setting_is_optional() -> None:
    assert load_settings().role_permissions_boundary is None
    assert load_settings(role_permissions_boundary="").role_permissions_boundary is None
