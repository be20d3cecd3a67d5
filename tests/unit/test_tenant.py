"""The Tenant entity: its state machine and what it shows as resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import InvalidTransition, TenantConflict
from domain.tenant import PUBLIC_RESOURCE_KEYS, Cell, Tenant, TenantSpec, TenantStatus, new_tenant

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CELL = Cell("123456789012", "eu-west-1")
S = TenantStatus


def tenant(status: TenantStatus = S.PROVISIONING) -> Tenant:
    t = new_tenant(TenantSpec("acme", "basic", "Acme"), CELL, T0)
    t.status = status
    return t


ALLOWED = {
    (S.PROVISIONING, S.ACTIVE),
    (S.PROVISIONING, S.FAILED),
    (S.PROVISIONING, S.DEPROVISIONING),
    (S.ACTIVE, S.DEPROVISIONING),
    (S.FAILED, S.PROVISIONING),
    (S.FAILED, S.DEPROVISIONING),
    (S.DEPROVISIONING, S.DEPROVISIONING),
    (S.DEPROVISIONING, S.DELETED),
}


def test_new_tenant_starts_provisioning_with_nothing_recorded() -> None:
    t = new_tenant(TenantSpec("acme", "basic", "Acme", "a@example.com"), CELL, T0)
    assert t.status is S.PROVISIONING
    assert t.created_at == t.updated_at == T0
    assert t.last_error is None and t.outputs == {} and t.completed_steps == []
    assert t.tenant_id == "acme"


@pytest.mark.parametrize(("src", "dst"), sorted(ALLOWED, key=str))
def test_allowed_transitions(src: TenantStatus, dst: TenantStatus) -> None:
    t = tenant(src)
    later = T0 + timedelta(minutes=5)
    t.transition(dst, later)
    assert t.status is dst
    assert t.updated_at == later


@pytest.mark.parametrize(
    ("src", "dst"),
    sorted({(a, b) for a in S for b in S} - ALLOWED, key=str),
)
def test_forbidden_transitions_are_conflicts_naming_the_state(src: TenantStatus, dst: TenantStatus) -> None:
    t = tenant(src)
    with pytest.raises(InvalidTransition) as caught:
        t.transition(dst, T0 + timedelta(minutes=5))
    assert isinstance(caught.value, TenantConflict)  # the API answers 409
    assert caught.value.status == src.value
    assert caught.value.code == "invalid_state"
    assert t.status is src and t.updated_at == T0


def test_any_live_state_can_be_deleted_and_deleted_is_final() -> None:
    for status in (S.PROVISIONING, S.ACTIVE, S.FAILED, S.DEPROVISIONING):
        t = tenant(status)
        t.transition(S.DEPROVISIONING, T0)
        t.transition(S.DELETED, T0)
        assert t.status is S.DELETED
    for dst in S:
        with pytest.raises(InvalidTransition):
            tenant(S.DELETED).transition(dst, T0)


def test_public_resources_show_the_cell_and_null_until_recorded() -> None:
    t = tenant()
    resources = t.public_resources()
    assert resources["account_id"] == "123456789012" and resources["region"] == "eu-west-1"
    assert all(resources[key] is None for key in PUBLIC_RESOURCE_KEYS)
    assert set(resources) == {"account_id", "region", *PUBLIC_RESOURCE_KEYS}


def test_public_resources_hide_internal_outputs() -> None:
    t = tenant()
    t.outputs.update({"user_pool_id": "eu-west-1_X", "admin_username": "admin", "authenticated_role_name": "r"})
    resources = t.public_resources()
    assert resources["user_pool_id"] == "eu-west-1_X"
    assert "admin_username" not in resources and "authenticated_role_name" not in resources


def test_copy_is_independent_of_the_original() -> None:
    t = tenant()
    t.outputs.update({"user_pool_id": "p"})
    t.completed_steps.append("user_pool")
    c = t.copy()
    c.outputs["app_client_id"] = "c"
    c.completed_steps.append("app_client")
    c.transition(S.ACTIVE, T0 + timedelta(seconds=1))
    assert t.outputs == {"user_pool_id": "p"}
    assert t.completed_steps == ["user_pool"]
    assert t.status is S.PROVISIONING


def test_copy_does_not_share_nested_outputs() -> None:
    # The ``groups`` step records a list; a copy handed out by a repository must not alias it.
    t = tenant()
    t.outputs["groups"] = ["admins", "users"]
    c = t.copy()
    c.outputs["groups"].append("auditors")
    assert t.outputs["groups"] == ["admins", "users"]


def test_specs_compare_by_value() -> None:
    assert TenantSpec("acme", "basic", "Acme") == TenantSpec("acme", "basic", "Acme")
    assert TenantSpec("acme", "basic", "Acme") != TenantSpec("acme", "basic", "Acme", "a@example.com")
