"""Lifecycle events without I/O: the events the use cases write (in the transaction of the change),
webhook signatures (sign, verify, tampering, replay window), the retry backoff, the webhook
publisher's answer handling (over httpx's MockTransport) and the settings."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.events.base import DeliveryFailed
from adapters.events.eventbridge import EventBridgePublisher
from adapters.events.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    compute_signature,
    signature_header,
    verify_signature,
)
from adapters.events.webhooks import WebhookPublisher, webhook_destination
from domain.errors import CloudError
from domain.lifecycle import (
    DEPROVISIONED,
    DEPROVISIONING_STARTED,
    PROVISIONING_FAILED,
    PROVISIONING_STARTED,
    PROVISIONING_SUCCEEDED,
    LifecycleEvent,
    RetryPolicy,
    lifecycle_event,
)
from domain.tenant import LastError
from service.settings import SettingsError, load_settings
from tests.unit.fakes import World

SECRET = "whsec_0123456789abcdef"
NOW = 1_760_000_000
BODY = b'{"id":"e1","type":"tenant.provisioning.started"}'


# -- signatures -------------------------------------------------------------------------------


def test_a_signed_body_verifies_and_returns_its_timestamp() -> None:
    headers = {SIGNATURE_HEADER: signature_header(SECRET, NOW, BODY)}
    assert verify_signature(SECRET, headers, BODY, now=NOW + 10) == NOW


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, NOW, BODY) == expected
    assert signature_header(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {SIGNATURE_HEADER.lower(): signature_header(SECRET, NOW, BODY)}
    assert verify_signature(SECRET, headers, BODY, now=NOW) == NOW


@pytest.mark.parametrize(
    "body, secret",
    [
        (BODY.replace(b"started", b"succeeded"), SECRET),  # a tampered body
        (BODY + b" ", SECRET),  # re-serialised
        (BODY, "another-secret-of-16+"),  # the wrong secret
    ],
)
def test_a_tampered_body_or_a_wrong_secret_is_refused(body: bytes, secret: str) -> None:
    headers = {SIGNATURE_HEADER: signature_header(SECRET, NOW, BODY)}
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(secret, headers, body, now=NOW)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    signature = compute_signature(SECRET, NOW, BODY)
    headers = {SIGNATURE_HEADER: f"t={NOW + 1},v1={signature}"}
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("skew", [301, -301, 3600])
def test_a_timestamp_outside_the_tolerance_is_refused_as_a_replay(skew: int) -> None:
    headers = {SIGNATURE_HEADER: signature_header(SECRET, NOW, BODY)}
    with pytest.raises(SignatureError, match="replay"):
        verify_signature(SECRET, headers, BODY, now=NOW + skew)
    assert verify_signature(SECRET, headers, BODY, tolerance_s=abs(skew), now=NOW + skew) == NOW


@pytest.mark.parametrize("value", [None, "", "v1=abc", f"t={NOW}", f"t=soon,v1={'0' * 64}", "garbage"])
def test_a_missing_or_malformed_header_is_refused(value: str | None) -> None:
    headers = {} if value is None else {SIGNATURE_HEADER: value}
    with pytest.raises(SignatureError):
        verify_signature(SECRET, headers, BODY, now=NOW)


def test_one_matching_v1_among_several_is_enough() -> None:
    good = compute_signature(SECRET, NOW, BODY)
    headers = {SIGNATURE_HEADER: f"t={NOW},v1={'0' * 64},v1={good}"}
    assert verify_signature(SECRET, headers, BODY, now=NOW) == NOW


# -- backoff ----------------------------------------------------------------------------------


def test_the_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=1.0, cap_s=10.0)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (30, 10.0)]:
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, min(delays), max(delays))
        assert len(set(delays)) > 100  # jittered, not one fixed delay
    assert not policy.gives_up(4) and policy.gives_up(5)


# -- events written by the use cases ------------------------------------------------------------


def types(world: World, tenant_id: str = "acme") -> list[str]:
    return [e.type for e in world.registry.outbox if e.tenant_id == tenant_id]


async def test_onboarding_writes_provisioning_started_in_its_own_commit() -> None:
    world = World()
    commits = world.registry.commits
    await world.onboard_spec("acme", "basic")
    assert types(world) == [PROVISIONING_STARTED]
    assert world.registry.commits == commits + 1  # tenant, job and event: one transaction
    [event] = world.registry.outbox
    assert event.detail["tier"] == "basic" and event.detail["status"] == "provisioning"
    assert event.envelope()["occurred_at"].endswith("Z")


async def test_a_failed_commit_of_the_onboarding_writes_no_event() -> None:
    world = World()
    world.registry.fail_next("commit", RuntimeError("registry down"))
    with pytest.raises(RuntimeError):
        await world.onboard_spec("acme", "basic")
    assert world.registry.outbox == [] and world.registry.tenant("acme") is None


async def test_the_same_onboarding_again_writes_no_second_event() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    await world.onboard_spec("acme", "basic")
    assert types(world) == [PROVISIONING_STARTED]


async def test_a_full_lifecycle_writes_started_succeeded_deprovisioning_started_deprovisioned() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "basic")
    await world.delete("acme")
    assert await world.deprovision("acme") is not None
    assert types(world) == [PROVISIONING_STARTED, PROVISIONING_SUCCEEDED, DEPROVISIONING_STARTED, DEPROVISIONED]
    succeeded = world.registry.outbox[1]
    assert succeeded.detail["status"] == "active"
    assert succeeded.detail["resources"]["user_pool_id"] == tenant.outputs["user_pool_id"]
    assert len({e.id for e in world.registry.outbox}) == 4


async def test_a_failed_provisioning_names_the_code_and_step_and_a_retry_starts_again() -> None:
    world = World()
    await world.onboard_spec("acme", "basic")
    world.cloud.fail("create_user_pool", CloudError("LimitExceededException", "quota s3cr3t", retryable=False))
    await world.provision("acme")
    failed = world.registry.outbox[-1]
    assert failed.type == PROVISIONING_FAILED
    assert failed.detail["last_error"] == {"code": "LimitExceededException", "step": "user_pool"}
    assert "s3cr3t" not in json.dumps(failed.envelope())  # codes only: messages may quote AWS text
    await world.retry("acme")
    assert types(world)[-1] == PROVISIONING_STARTED


def test_an_event_summary_carries_no_secret_and_unknown_types_are_refused() -> None:
    from domain.tenant import Cell, TenantSpec, new_tenant

    tenant = new_tenant(
        TenantSpec("acme", "premium", "Acme", "boss@acme.test"), Cell("123456789012", "us-east-1"), datetime.now(UTC)
    )
    tenant.outputs.update(
        {"app_client_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "internal": "x"}
    )
    event = lifecycle_event(
        PROVISIONING_FAILED, tenant, datetime.now(UTC), LastError("Boom", "secret text s3cr3t", "x")
    )
    text = json.dumps(event.envelope())
    assert "s3cr3t" not in text and "internal" not in text and "boss@acme.test" not in text
    with pytest.raises(ValueError):
        LifecycleEvent("tenant.exploded", "acme", datetime.now(UTC))


# -- the webhook publisher ---------------------------------------------------------------------


def envelope() -> dict[str, Any]:
    return LifecycleEvent(PROVISIONING_STARTED, "acme", datetime.now(UTC), {"tier": "basic"}).envelope()


async def publish_against(handler: Any) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        publisher = WebhookPublisher("https://hooks.example/t?token=abc", SECRET, client)
        await publisher.publish(envelope())
    return seen


async def test_a_2xx_delivers_a_request_the_receiver_can_verify() -> None:
    [request] = await publish_against(lambda r: httpx.Response(204))
    body = request.content
    assert verify_signature(SECRET, request.headers, body) > 0
    assert request.headers[EVENT_ID_HEADER] == json.loads(body)["id"]
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "status, permanent",
    [(500, False), (503, False), (408, False), (429, False), (400, True), (404, True), (410, True), (301, True)],
)
async def test_non_2xx_answers_fail_retryable_or_permanent(status: int, permanent: bool) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await publish_against(lambda r: httpx.Response(status))
    assert failure.value.permanent is permanent
    assert failure.value.reason == f"HTTP {status}"


async def test_connection_errors_and_timeouts_are_retried_and_never_name_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to https://hooks.example/t?token=abc", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    for handler in (refuse, slow):
        with pytest.raises(DeliveryFailed) as failure:
            await publish_against(handler)
        assert not failure.value.permanent
        assert "token" not in failure.value.reason and "hooks.example" not in failure.value.reason


def test_a_webhook_destination_name_does_not_reveal_its_url() -> None:
    name = webhook_destination("https://hooks.example/t?token=abc")
    assert name.startswith("webhook:") and "hooks" not in name and "token" not in name
    assert name == webhook_destination("https://hooks.example/t?token=abc")


# -- settings -----------------------------------------------------------------------------------


def test_webhook_urls_need_a_secret_and_https_off_loopback() -> None:
    with pytest.raises(SettingsError, match="TENANTS_WEBHOOK_SECRET: .*required"):
        load_settings(webhook_urls="https://hooks.example/a")
    with pytest.raises(SettingsError, match="TENANTS_WEBHOOK_URLS") as bad:
        load_settings(webhook_urls="http://hooks.example/a?token=abc", webhook_secret=SECRET)
    assert "token=abc" not in str(bad.value)
    with pytest.raises(SettingsError, match="TENANTS_WEBHOOK_SECRET: .*16"):
        load_settings(webhook_urls="https://hooks.example/a", webhook_secret="short")
    settings = load_settings(webhook_urls="https://a.example/h, http://127.0.0.1:9/h", webhook_secret=SECRET)
    assert settings.webhook_urls == ("https://a.example/h", "http://127.0.0.1:9/h")
    assert load_settings(event_bus_name="").event_bus_name is None
    with pytest.raises(SettingsError, match="TENANTS_EVENT_BUS_NAME"):
        load_settings(event_bus_name="no spaces")


# -- the EventBridge publisher ------------------------------------------------------------------


class _Events:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    async def put_events(self, **params: Any) -> dict[str, Any]:
        self.sent.append(params)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def client(self, service: str) -> _Events:
        assert service == "events"
        return self


async def test_eventbridge_sends_one_entry_with_the_envelope_as_detail() -> None:
    events = _Events({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})
    publisher = EventBridgePublisher(events, "tenant-lifecycle")  # type: ignore[arg-type]
    sent = envelope()
    await publisher.publish(sent)
    [call] = events.sent
    [entry] = call["Entries"]
    assert entry["Source"] == "tenant-identity-provisioner" and entry["EventBusName"] == "tenant-lifecycle"
    assert entry["DetailType"] == PROVISIONING_STARTED and json.loads(entry["Detail"]) == sent
    assert publisher.destination == "eventbridge:tenant-lifecycle"


@pytest.mark.parametrize(
    "code, permanent", [("InternalFailure", False), ("ThrottlingException", False), ("MalformedDetail", True)]
)
async def test_an_entry_eventbridge_did_not_take_is_a_failed_delivery(code: str, permanent: bool) -> None:
    events = _Events({"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "no"}]})
    with pytest.raises(DeliveryFailed) as failure:
        await EventBridgePublisher(events, "b").publish(envelope())  # type: ignore[arg-type]
    assert failure.value.permanent is permanent and code in failure.value.reason


async def test_a_failed_put_events_call_is_retried() -> None:
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no bus"}}, "PutEvents")
    with pytest.raises(DeliveryFailed) as failure:
        await EventBridgePublisher(_Events(error), "b").publish(envelope())  # type: ignore[arg-type]
    assert not failure.value.permanent and "ResourceNotFoundException" in failure.value.reason


def test_the_emulator_authorizes_put_events_on_the_bus() -> None:
    from adapters.aws.emulator.authorization import json_resource

    params = {"Entries": [{"EventBusName": "tenant-lifecycle", "Source": "s"}]}
    assert json_resource("events", params, "eu-west-1", "123456789012") == (
        "arn:aws:events:eu-west-1:123456789012:event-bus/tenant-lifecycle"
    )
    assert json_resource("events", {"Entries": [{}]}, "eu-west-1", "1").endswith(":event-bus/default")
