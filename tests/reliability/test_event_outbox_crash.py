"""Lifecycle events survive a kill: the service SIGKILLs itself right after the commit that wrote an
event to the outbox and before its dispatcher could send it; a fresh process delivers it, signed.

``event:tenant.provisioning.started`` dies inside the POST (the onboarding's own commit);
``event:tenant.provisioning.succeeded`` inside the worker (the final commit of the plan)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import httpx
import pytest

from domain.lifecycle import PROVISIONING_STARTED, PROVISIONING_SUCCEEDED
from tests.reliability.harness import Emulator, Service, wait_until
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.crash
SECRET = "whsec_cmVsaWFiaWxpdHkta2V5LTAxMjM0NTY3"  # whsec_ + base64(b"reliability-key-01234567")


@pytest.fixture
def receiver() -> WebhookReceiver:
    r = WebhookReceiver(SECRET).start()
    yield r  # type: ignore[misc]
    r.stop()


@pytest.mark.parametrize("event_type", [PROVISIONING_STARTED, PROVISIONING_SUCCEEDED])
def test_an_event_committed_just_before_a_kill_is_delivered_after_a_restart(
    event_type: str, standalone_emulator: Emulator, registry_url: str, workdir: Path, receiver: WebhookReceiver
) -> None:
    env = {
        "TENANTS_WEBHOOK_URLS": f"{receiver.url}/hook",
        "TENANTS_WEBHOOK_SECRET": SECRET,
        "TENANTS_EVENTS_POLL_INTERVAL_S": "0.1",
    }
    tenant_id = f"evcrash-{uuid.uuid4().hex[:8]}"
    point = f"event:{event_type}"
    doomed = Service(registry_url, standalone_emulator.url, workdir, crash_at=point, extra_env=env).start()
    try:
        with doomed.client() as http, contextlib.suppress(httpx.HTTPError):  # the POST may die with it
            http.post("/v1/tenants", json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Crash Events"})
        assert doomed.wait_killed() == point
    finally:
        doomed.stop()
    mine = [r for r in receiver.all() if r.event["tenant_id"] == tenant_id]
    assert event_type not in [r.event["type"] for r in mine]  # killed before it could be sent

    heir = Service(registry_url, standalone_emulator.url, workdir, extra_env=env).start()
    try:

        def delivered() -> list[str]:
            got = [r.event["type"] for r in receiver.delivered("/hook") if r.event["tenant_id"] == tenant_id]
            return got if PROVISIONING_SUCCEEDED in got else []

        types = wait_until(delivered, 60, f"{event_type} of {tenant_id} to be delivered", 0.1)
    finally:
        heir.stop()
    assert types.count(event_type) == 1 and types.index(PROVISIONING_STARTED) < types.index(PROVISIONING_SUCCEEDED)
    assert all(r.verified for r in receiver.all())
