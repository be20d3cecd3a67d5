"""Crash safety with real kills.

For every crash point (each successful AWS call before its registry write, and each step
boundary) a `tenantctl serve` process SIGKILLs itself there; a fresh process then takes the job
over once its lease expires. The tenant must end where it was headed (active, or deleted for
teardown) with exactly one of each resource and every owned resource in the emulator recorded
in the registry: no duplicate, no orphan.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import FIGURES
from tests.reliability.harness import Emulator, Service, wait_until
from tests.reliability.inventory import assert_exactly_recorded, owned_inventory

pytestmark = pytest.mark.crash

PROVISION_POINTS = [
    *(
        f"after-call:{op}"
        for op in (
            "CreateUserPool",
            "SetUserPoolMfaConfig",
            "CreateUserPoolClient",
            "CreateGroup",
            "CreateUserPoolDomain",
            "AdminCreateUser",
            "AdminAddUserToGroup",
            "CreateIdentityPool",
            "CreateRole",
            "PutRolePolicy",
            "SetIdentityPoolRoles",
            "CreateSecret",
        )
    ),
    *(
        f"step:{step}"
        for step in (
            "user_pool",
            "user_pool_mfa",
            "app_client",
            "groups",
            "hosted_ui_domain",
            "admin_user",
            "identity_pool",
            "auth_role",
            "auth_role_policy",
            "unauth_role",
            "unauth_role_policy",
            "identity_pool_roles",
            "client_secret",
        )
    ),
]
TEARDOWN_POINTS = [
    *(
        f"after-call:{op}"
        for op in (
            "DeleteRolePolicy",
            "DeleteRole",
            "DeleteIdentityPool",
            "DeleteUserPoolDomain",
            "UpdateUserPool",
            "DeleteUserPool",
            "DeleteSecret",
        )
    ),
    *(
        f"step:{step}"
        for step in (
            "delete_auth_role",
            "delete_unauth_role",
            "delete_identity_pool",
            "delete_hosted_ui_domain",
            "delete_user_pool",
            "delete_client_secret",
        )
    ),
]
BODY = {"tier": "premium", "display_name": "Crash Corp", "admin_email": "admin@crash.example"}


def _tenant(service: Service, tenant_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    with service.client() as http:
        return wait_until(
            lambda: (t := http.get(f"/v1/tenants/{tenant_id}").json()) and t.get("status") in statuses and t,
            timeout,
            f"tenant {tenant_id} to reach {statuses}",
            0.1,
        )


@pytest.mark.parametrize("point", PROVISION_POINTS)
def test_provisioning_survives_a_kill(point: str, standalone_emulator: Emulator, registry_url: str, workdir: Path) -> None:
    tenant_id = f"crash-{uuid.uuid4().hex[:10]}"
    doomed = Service(registry_url, standalone_emulator.url, workdir, crash_at=point).start()
    try:
        with doomed.client() as http:
            assert http.post("/v1/tenants", json={"tenant_id": tenant_id, **BODY}).status_code == 202
        assert doomed.wait_killed() == point
    finally:
        doomed.stop()

    heir = Service(registry_url, standalone_emulator.url, workdir).start()
    try:
        tenant = _tenant(heir, tenant_id, {"active", "failed"})
        assert tenant["status"] == "active", tenant
        owned = owned_inventory(standalone_emulator.url).get(tenant_id)
        assert owned is not None
        assert_exactly_recorded(owned, tenant)
        FIGURES["crash points killed at (provisioning)"] += 1
    finally:
        heir.stop()


@pytest.mark.parametrize("point", TEARDOWN_POINTS)
def test_teardown_survives_a_kill(point: str, standalone_emulator: Emulator, registry_url: str, workdir: Path) -> None:
    tenant_id = f"crash-{uuid.uuid4().hex[:10]}"
    # Provisioning never reaches a teardown crash point, so this process onboards, then dies.
    doomed = Service(registry_url, standalone_emulator.url, workdir, crash_at=point).start()
    try:
        with doomed.client() as http:
            created = http.post("/v1/tenants", json={"tenant_id": tenant_id, **BODY}, headers={"Prefer": "wait=30"})
            assert created.status_code == 201 and created.json()["status"] == "active", created.text
            assert http.delete(f"/v1/tenants/{tenant_id}").status_code == 202
        assert doomed.wait_killed() == point
    finally:
        doomed.stop()

    heir = Service(registry_url, standalone_emulator.url, workdir).start()
    try:
        tenant = _tenant(heir, tenant_id, {"deleted"})
        assert all(v is None for k, v in tenant["resources"].items() if k not in ("account_id", "region")), tenant
        owned = owned_inventory(standalone_emulator.url).get(tenant_id)
        assert owned is None or owned.empty(), owned
        FIGURES["crash points killed at (teardown)"] += 1
    finally:
        heir.stop()
