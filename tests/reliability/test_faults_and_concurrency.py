"""Faults that really happen, and many requests at once, against real processes.

* 50 premium tenants onboarded concurrently while 30% of AWS calls are throttled, fail with a 5xx
  or succeed on the server with the response lost: all end active, none duplicated or orphaned.
* 40 tenants across two worker processes sharing one registry: each provisioned exactly once.

The figures (calls, faults by kind, duplicates, orphans) are printed for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.aws.emulator import fault_stats, set_faults
from tests.helpers import API_KEY
from tests.reliability.conftest import FIGURES
from tests.reliability.harness import Emulator, Service, wait_until
from tests.reliability.inventory import assert_exactly_recorded, owned_inventory

pytestmark = pytest.mark.crash


async def _onboard_all(url: str, tenant_ids: list[str], tier: str) -> list[int]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post("/v1/tenants", json={"tenant_id": t, "tier": tier, "display_name": t, "admin_email": f"a@{t}.example"})
                for t in tenant_ids
            )
        )
    return [r.status_code for r in responses]


def _wait_all(service: Service, tenant_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    with service.client() as http:

        def settled() -> dict[str, dict[str, Any]] | None:
            page = {t["tenant_id"]: t for t in http.get("/v1/tenants", params={"limit": 200}).json()["items"]}
            mine = {t: page[t] for t in tenant_ids if t in page}
            if len(mine) == len(tenant_ids) and all(t["status"] in ("active", "failed") for t in mine.values()):
                return mine
            return None

        return wait_until(settled, timeout, "every tenant to settle", 0.25)


def _check_no_duplicates_no_orphans(endpoint: str, tenants: dict[str, dict[str, Any]], tier: str) -> int:
    inventory = owned_inventory(endpoint)
    for tenant_id, tenant in tenants.items():
        assert tenant["status"] == "active", tenant
        assert_exactly_recorded(inventory[tenant_id], tenant, tier=tier)
    return len(inventory)


async def test_fifty_tenants_under_thirty_percent_faults(tmp_path: Path, registry_url: str) -> None:
    emulator = Emulator(log=tmp_path / "emulator.log").start()
    service = Service(
        registry_url, emulator.url, tmp_path, extra_env={"TENANTS_WORKER_CONCURRENCY": "16", "TENANTS_LEASE_SECONDS": "30"}
    ).start()
    try:
        set_faults(emulator.url, rate=0.3, seed=20261126, reset_stats=True)
        tenant_ids = [f"fault-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(50)]
        statuses = await _onboard_all(service.url, tenant_ids, "premium")
        assert statuses == [202] * 50
        tenants = await asyncio.to_thread(_wait_all, service, tenant_ids, 300)
        stats = fault_stats(emulator.url)["stats"]
        set_faults(emulator.url, rate=0.0)
        owners = _check_no_duplicates_no_orphans(emulator.url, tenants, "premium")
        assert owners == 50  # nothing owned by any tenant we did not onboard
        assert stats["by_kind"].get("lost", 0) > 0 and stats["by_kind"].get("throttle", 0) > 0
        FIGURES["tenants onboarded under faults"] += 50
        FIGURES["AWS calls under faults"] += stats["calls"]
        for kind, count in stats["by_kind"].items():
            if count:
                FIGURES["faults injected"][kind] = FIGURES["faults injected"].get(kind, 0) + count
    finally:
        service.stop()
        emulator.stop()


async def test_forty_tenants_across_two_worker_processes(tmp_path: Path, registry_url: str) -> None:
    emulator = Emulator(log=tmp_path / "emulator.log").start()
    env = {"TENANTS_WORKER_CONCURRENCY": "4", "TENANTS_LEASE_SECONDS": "30"}
    api = Service(registry_url, emulator.url, tmp_path / "a", extra_env=env).start()
    worker = Service(registry_url, emulator.url, tmp_path / "b", extra_env=env, command="worker").start()
    try:
        set_faults(emulator.url, reset_stats=True)
        tenant_ids = [f"pair-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(40)]
        assert await _onboard_all(api.url, tenant_ids, "basic") == [202] * 40
        tenants = await asyncio.to_thread(_wait_all, api, tenant_ids, 180)
        _check_no_duplicates_no_orphans(emulator.url, tenants, "basic")
        stats = fault_stats(emulator.url)["stats"]["by_operation"]
        assert stats["cognito-idp:CreateUserPool"]["calls"] == 40
        assert stats["cognito-identity:CreateIdentityPool"]["calls"] == 40
        assert stats["iam:CreateRole"]["calls"] == 40
        ran_a = {json.loads(line)["tenant_id"] for line in api.text().splitlines() if '"job_started"' in line}
        ran_b = {json.loads(line)["tenant_id"] for line in worker.text().splitlines() if '"job_started"' in line}
        assert ran_a and ran_b, "both processes should have taken jobs"
        assert not (ran_a & ran_b), "a tenant's job ran in both processes"
        assert ran_a | ran_b == set(tenant_ids)
        FIGURES["tenants across two worker processes"] += 40
    finally:
        worker.stop()
        api.stop()
        emulator.stop()


async def test_fifty_concurrent_posts_for_one_tenant_make_one_set(tmp_path: Path, registry_url: str) -> None:
    emulator = Emulator(log=tmp_path / "emulator.log").start()
    service = Service(registry_url, emulator.url, tmp_path).start()
    tenant_id = f"dup-{uuid.uuid4().hex[:10]}"
    body = {"tenant_id": tenant_id, "tier": "premium", "display_name": "Dup", "admin_email": "a@dup.example"}
    shared = f"key-{uuid.uuid4().hex}"
    keys = [shared] * 25 + [f"key-{uuid.uuid4().hex}" for _ in range(15)] + [None] * 10
    try:
        async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:
            responses = await asyncio.gather(
                *(http.post("/v1/tenants", json=body, headers={"Idempotency-Key": k} if k else {}) for k in keys)
            )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 202, 409}, statuses
        assert statuses.count(202) >= 1
        tenants = await asyncio.to_thread(_wait_all, service, [tenant_id], 60)
        _check_no_duplicates_no_orphans(emulator.url, tenants, "premium")
        stats = fault_stats(emulator.url)["stats"]["by_operation"]
        assert stats["cognito-idp:CreateUserPool"]["calls"] == 1
        FIGURES["concurrent duplicate POSTs sent"] += 50
    finally:
        service.stop()
        emulator.stop()
