"""End to end: `tenantctl serve` as a subprocess publishes one tenant's lifecycle to the emulator's
EventBridge (a bus whose rule targets an SQS queue, read back over HTTP) and to a signed webhook
on loopback, and its logs name neither the webhook URL nor the signing secret."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.events.signing import EVENT_ID_HEADER
from adapters.registry.migrate import upgrade
from domain.lifecycle import DEPROVISIONED, DEPROVISIONING_STARTED, PROVISIONING_STARTED, PROVISIONING_SUCCEEDED
from tests.helpers import unique_id
from tests.integration.databases import throwaway_database
from tests.integration.test_lifecycle_events import bus_with_queue, drain
from tests.reliability.harness import Service, wait_until
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
SECRET = "whsec_e2e_0123456789abcdef"
LIFECYCLE = [PROVISIONING_STARTED, PROVISIONING_SUCCEEDED, DEPROVISIONING_STARTED, DEPROVISIONED]


@pytest.fixture(scope="module")
async def registry_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        async with throwaway_database(server) as url:
            await upgrade(url)
            yield url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('e2e-events') / 'registry.db'}"
        await upgrade(url)
        yield url


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET, fail_first={"/flaky": 2}).start()
    try:
        yield r
    finally:
        r.stop()


def test_a_served_tenant_lifecycle_reaches_eventbridge_and_a_signed_webhook(
    registry_url: str, emulator_endpoint: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    bus = unique_id("e2ebus")
    queue_url = bus_with_queue(emulator_endpoint, bus)
    env = {
        "TENANTS_EVENT_BUS_NAME": bus,
        "TENANTS_WEBHOOK_URLS": f"{receiver.url}/ok,{receiver.url}/flaky",
        "TENANTS_WEBHOOK_SECRET": SECRET,
        "TENANTS_EVENTS_BACKOFF_S": "0.05",
        "TENANTS_EVENTS_BACKOFF_MAX_S": "0.2",
        "TENANTS_EVENTS_POLL_INTERVAL_S": "0.1",
    }
    service = Service(registry_url, emulator_endpoint, tmp_path, extra_env=env).start()
    tenant_id = unique_id("e2eev")
    sqs: list[dict[str, object]] = []
    try:
        with service.client() as http:
            created = http.post(
                "/v1/tenants",
                json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Events E2E"},
                headers={"Prefer": "wait=30"},
            )
            assert created.status_code == 201 and created.json()["status"] == "active", created.text
            deleted = http.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
            assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text

        def arrived() -> bool:
            sqs.extend(drain(emulator_endpoint, queue_url))
            return len(sqs) >= 4 and len(receiver.delivered("/ok")) >= 4 and len(receiver.delivered("/flaky")) >= 4

        wait_until(arrived, 30, "the lifecycle events at every destination", 0.1)
    finally:
        # SIGTERM: the worker and the dispatcher drain, then uvicorn re-raises the signal.
        assert service.stop() in (0, -signal.SIGTERM), service.text()[-2000:]
    assert [e["detail-type"] for e in sqs] == LIFECYCLE
    ids = [e["detail"]["id"] for e in sqs]  # type: ignore[index]
    assert [r.headers[EVENT_ID_HEADER] for r in receiver.delivered("/ok")] == ids
    assert [r.headers[EVENT_ID_HEADER] for r in receiver.delivered("/flaky")] == ids
    assert all(r.verified for r in receiver.all()) and all(r.attempt == 3 for r in receiver.delivered("/flaky"))
    log = service.text()
    assert "event_delivery_failed" in log and "event_delivered" in log and "event_dispatcher_stopped" in log
    assert SECRET not in log and receiver.url not in log and "/flaky" not in log
