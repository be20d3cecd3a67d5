"""Lifecycle events end to end, in-process service over HTTP: one onboarding and teardown reach the
emulator's EventBridge (a bus whose rule targets an SQS queue, read back over HTTP) and two signed
webhook receivers on loopback, one of which answers 500 twice per event before taking it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from adapters.events.signing import EVENT_TYPE_HEADER, WEBHOOK_ID_HEADER
from adapters.registry.engine import make_engine
from adapters.registry.tables import outbox
from domain.lifecycle import (
    DEPROVISIONED,
    DEPROVISIONING_STARTED,
    PROVISIONING_STARTED,
    PROVISIONING_SUCCEEDED,
)
from tests.helpers import API_KEY, boto, unique_id, wait_status
from tests.integration.test_api import make_app
from tests.webhook_receiver import WebhookReceiver

AUTH = {"Authorization": f"Bearer {API_KEY}"}
SECRET = "whsec_aW50ZWdyYXRpb24ta2V5LTAxMjM0NTY3"  # whsec_ + base64(b"integration-key-01234567")
LIFECYCLE = [PROVISIONING_STARTED, PROVISIONING_SUCCEEDED, DEPROVISIONING_STARTED, DEPROVISIONED]
EXPECTED_METRICS = (
    'tenants_events_delivered_total{destination_kind="eventbridge"} 4.0',
    'tenants_events_delivered_total{destination_kind="webhook"} 8.0',
    'tenants_events_failed_total{destination_kind="webhook",outcome="retry"} 8.0',
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET, fail_first={"/flaky": 2}).start()
    try:
        yield r
    finally:
        r.stop()


def bus_with_queue(endpoint: str, bus: str) -> str:
    """A custom bus in the emulator with a rule sending the service's events to a new SQS queue."""
    events, sqs = boto("events", endpoint), boto("sqs", endpoint)
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["tenant-identity-provisioner"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue_url)


def drain(endpoint: str, queue_url: str) -> list[dict[str, Any]]:
    sqs = boto("sqs", endpoint)
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


async def until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_one_onboarding_and_teardown_reach_eventbridge_and_signed_webhooks(
    emulator_endpoint: str, database_url: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    bus = unique_id("bus")
    queue_url = bus_with_queue(emulator_endpoint, bus)
    app = make_app(
        tmp_path,
        emulator_endpoint,
        database_url,
        event_bus_name=bus,
        webhook_urls=f"{receiver.url}/ok,{receiver.url}/flaky",
        webhook_secret=SECRET,
        events_backoff_s=0.05,
        events_backoff_max_s=0.2,
        events_poll_interval_s=0.05,
    )
    tenant_id = unique_id("evt")
    async with AsyncTestClient(app) as client:
        client.headers.update(AUTH)
        response = await client.post(
            "/v1/tenants", json={"tenant_id": tenant_id, "tier": "basic", "display_name": "Events Inc"}
        )
        assert response.status_code in (201, 202), response.text
        assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
        assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code in (200, 202)
        assert (await wait_status(client, tenant_id, {"deleted"}))["status"] == "deleted"

        sqs_events: list[dict[str, Any]] = []

        def everything_arrived() -> bool:
            sqs_events.extend(drain(emulator_endpoint, queue_url))
            return (
                len(receiver.delivered("/ok")) >= 4 and len(receiver.delivered("/flaky")) >= 4 and len(sqs_events) >= 4
            )

        await until(everything_arrived, "the four events at every destination")
        # The receivers have them; the dispatcher records each delivery right after it lands.
        for _ in range(200):
            metrics = (await client.get("/metrics")).text
            if "tenants_events_pending 0.0" in metrics and all(line in metrics for line in EXPECTED_METRICS):
                break
            await asyncio.sleep(0.05)

    # EventBridge: the four events, in order, with the envelope as the detail.
    assert [e["detail-type"] for e in sqs_events] == LIFECYCLE
    assert all(e["source"] == "tenant-identity-provisioner" for e in sqs_events)
    assert [e["detail"]["tenant_id"] for e in sqs_events] == [tenant_id] * 4
    assert sqs_events[1]["detail"]["detail"]["status"] == "active"
    assert sqs_events[1]["detail"]["detail"]["resources"]["user_pool_id"].startswith("us-east-1_")

    # Webhooks: each request signed (the receiver verified it with standardwebhooks), ids stable across retries.
    assert all(r.verified for r in receiver.all())
    ok = receiver.delivered("/ok")
    assert [r.event["type"] for r in ok] == LIFECYCLE
    assert [r.headers[EVENT_TYPE_HEADER.lower()] for r in ok] == LIFECYCLE
    assert [r.headers[WEBHOOK_ID_HEADER] for r in ok] == [e["detail"]["id"] for e in sqs_events]
    assert all(r.attempt == 1 for r in ok)
    # The flaky receiver answered 500 twice per event and got each on the third attempt, in order.
    flaky = receiver.delivered("/flaky")
    assert [r.event["type"] for r in flaky] == LIFECYCLE
    assert all(r.attempt == 3 for r in flaky)
    assert sum(1 for r in receiver.all() if r.path == "/flaky" and r.status == 500) == 8

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.state, outbox.c.attempts, outbox.c.destination))).all()
    finally:
        await engine.dispose()
    assert len(rows) == 12 and {state for state, _, _ in rows} == {"delivered"}
    assert sorted(attempts for _, attempts, _ in rows) == [1] * 8 + [3] * 4
    for line in EXPECTED_METRICS:
        assert line in metrics, line
    assert "tenants_events_pending 0.0" in metrics and "tenants_events_dead 0.0" in metrics
    assert SECRET not in metrics and receiver.url not in metrics
