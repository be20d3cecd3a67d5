"""End to end: `tenantctl serve` as a subprocess publishes one tenant's lifecycle to the emulator's
EventBridge (a bus whose rule targets an SQS queue, read back over HTTP) and to signed webhooks
on loopback, and its logs name neither the webhook URL nor a signing secret.

The service is mid-way through a secret rotation that is also an upgrade: TENANTS_WEBHOOK_SECRET
lists a plain secret of the pre-Standard-Webhooks scheme and a new whsec_ one. A receiver holding
the old secret (written whsec_ + base64 of its bytes) and receivers holding only the new one all
verify every request with the standardwebhooks library."""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.events.signing import WEBHOOK_ID_HEADER
from adapters.registry.migrate import upgrade
from domain.lifecycle import (
    DEPROVISIONED,
    DEPROVISIONING_STARTED,
    PROVISIONING_STARTED,
    PROVISIONING_SUCCEEDED,
)
from tests.helpers import unique_id
from tests.integration.databases import throwaway_database
from tests.integration.test_lifecycle_events import bus_with_queue, drain
from tests.reliability.harness import Service, wait_until
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
OLD_PLAIN_SECRET = "e2e-old-plain-secret-0123456789"  # as deployments configured it before whsec_
OLD_SECRET = "whsec_" + base64.b64encode(OLD_PLAIN_SECRET.encode()).decode()  # the same key
NEW_SECRET = "whsec_ZTJlLW5ldy1rZXktMDEyMzQ1Njc4OWFi"  # whsec_ + base64(b"e2e-new-key-0123456789ab")
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
    r = WebhookReceiver(NEW_SECRET, fail_first={"/flaky": 2}).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def old_receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(OLD_SECRET).start()
    try:
        yield r
    finally:
        r.stop()


def test_a_served_tenant_lifecycle_reaches_eventbridge_and_a_signed_webhook(
    registry_url: str,
    emulator_endpoint: str,
    receiver: WebhookReceiver,
    old_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    bus = unique_id("e2ebus")
    queue_url = bus_with_queue(emulator_endpoint, bus)
    env = {
        "TENANTS_EVENT_BUS_NAME": bus,
        "TENANTS_WEBHOOK_URLS": f"{receiver.url}/ok,{receiver.url}/flaky,{old_receiver.url}/old",
        "TENANTS_WEBHOOK_SECRET": f"{OLD_PLAIN_SECRET} {NEW_SECRET}",
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
            return (
                len(sqs) >= 4
                and len(receiver.delivered("/ok")) >= 4
                and len(receiver.delivered("/flaky")) >= 4
                and len(old_receiver.delivered("/old")) >= 4
            )

        wait_until(arrived, 30, "the lifecycle events at every destination", 0.1)
    finally:
        # SIGTERM: the worker and the dispatcher drain, then uvicorn re-raises the signal.
        assert service.stop() in (0, -signal.SIGTERM), service.text()[-2000:]
    assert [e["detail-type"] for e in sqs] == LIFECYCLE
    ids = [e["detail"]["id"] for e in sqs]  # type: ignore[index]
    assert [r.headers[WEBHOOK_ID_HEADER] for r in receiver.delivered("/ok")] == ids
    assert [r.headers[WEBHOOK_ID_HEADER] for r in receiver.delivered("/flaky")] == ids
    assert [r.headers[WEBHOOK_ID_HEADER] for r in old_receiver.delivered("/old")] == ids
    assert all(r.verified for r in receiver.all() + old_receiver.all())
    assert all(r.attempt == 3 for r in receiver.delivered("/flaky"))
    assert all(len(r.headers["webhook-signature"].split(" ")) == 2 for r in old_receiver.all())
    log = service.text()
    assert "event_delivery_failed" in log and "event_delivered" in log and "event_dispatcher_stopped" in log
    assert "webhook_secret_not_whsec" in log  # the plain secret still works, and is flagged as deprecated
    for secret in (OLD_PLAIN_SECRET, OLD_SECRET.removeprefix("whsec_"), NEW_SECRET.removeprefix("whsec_")):
        assert secret not in log
    assert receiver.url not in log and old_receiver.url not in log and "/flaky" not in log
