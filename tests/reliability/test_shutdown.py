"""SIGTERM: the service stops claiming, lets running jobs finish within the grace period, then
releases them; another process resumes them with nothing duplicated."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.reliability.harness import Emulator, Service, wait_until
from tests.reliability.inventory import assert_exactly_recorded, owned_inventory

pytestmark = pytest.mark.crash


def test_sigterm_releases_the_running_job_and_another_process_finishes_it(tmp_path: Path, registry_url: str) -> None:
    # 400 ms per AWS call: a premium onboarding takes several seconds, so it is surely mid-plan.
    emulator = Emulator(log=tmp_path / "emulator.log", latency_ms=400).start()
    tenant_id = f"term-{uuid.uuid4().hex[:10]}"
    first = Service(
        registry_url, emulator.url, tmp_path, extra_env={"TENANTS_SHUTDOWN_GRACE_S": "0.5", "TENANTS_LEASE_SECONDS": "30"}
    ).start()
    try:
        with first.client() as http:
            body = {"tenant_id": tenant_id, "tier": "premium", "display_name": "Term", "admin_email": "a@term.example"}
            assert http.post("/v1/tenants", json=body).status_code == 202
            wait_until(
                lambda: http.get(f"/v1/tenants/{tenant_id}").json()["resources"]["user_pool_id"], 30, "the first step"
            )
        started = time.monotonic()
        code = first.stop(signal.SIGTERM, timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        first.stop(signal.SIGKILL)
    events = [json.loads(line) for line in first.text().splitlines() if line.startswith("{")]
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells why it stopped.
    assert code in (0, -signal.SIGTERM), first.text()[-2000:]
    assert any(e.get("event") == "worker_stopped" for e in events)
    assert any(e.get("event") == "job_released" and e.get("tenant_id") == tenant_id for e in events), first.text()[-2000:]
    # The job went back to pending at once: the next process need not wait for the 30 s lease.
    heir = Service(registry_url, emulator.url, tmp_path).start()
    try:
        with heir.client() as http:
            tenant = wait_until(
                lambda: (t := http.get(f"/v1/tenants/{tenant_id}").json())["status"] in ("active", "failed") and t,
                25,
                "the heir to finish the tenant",
                0.2,
            )
        assert tenant["status"] == "active", tenant
        assert_exactly_recorded(owned_inventory(emulator.url)[tenant_id], tenant)
    finally:
        heir.stop()
        emulator.stop()
    assert stopped_in < 20, stopped_in
