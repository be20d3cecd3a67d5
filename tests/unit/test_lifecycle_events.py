"""Lifecycle events without I/O: the events the use cases write (in the transaction of the change),
webhook signatures (the Standard Webhooks scheme, checked with the ``standardwebhooks`` library's
own verifier: tampering, wrong secret, stale timestamp, rotation), the retry backoff, the webhook
publisher's answer handling (over httpx's MockTransport) and the settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from adapters.events.base import DeliveryFailed
from adapters.events.eventbridge import EventBridgePublisher
from adapters.events.signing import (
    EVENT_TYPE_HEADER,
    LEGACY_EVENT_ID_HEADER,
    LEGACY_SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    parse_secrets,
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

KEY, NEW_KEY = b"unit-test-key-0123456789", b"unit-test-new-key-abcdef"
SECRET = "whsec_dW5pdC10ZXN0LWtleS0wMTIzNDU2Nzg5"  # whsec_ + base64(KEY)
NEW_SECRET = "whsec_dW5pdC10ZXN0LW5ldy1rZXktYWJjZGVm"  # whsec_ + base64(NEW_KEY)


# -- the webhook publisher's signatures (Standard Webhooks) ------------------------------------


def envelope() -> dict[str, Any]:
    return LifecycleEvent(PROVISIONING_STARTED, "acme", datetime.now(UTC), {"tier": "basic"}).envelope()


async def publish_against(
    handler: Any,
    secret: str = SECRET,
    sent: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    times: int = 1,
) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        publisher = WebhookPublisher("https://hooks.example/t?token=abc", secret, client, clock=clock)
        event = sent or envelope()
        for _ in range(times):
            await publisher.publish(event)
    return seen


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204)


async def test_a_delivered_request_verifies_with_the_standardwebhooks_library() -> None:
    sent = envelope()
    [request] = await publish_against(ok, sent=sent)
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == sent
    assert request.headers[WEBHOOK_ID_HEADER] == sent["id"]
    assert request.headers[EVENT_TYPE_HEADER] == PROVISIONING_STARTED
    assert request.headers["content-type"] == "application/json"


async def test_the_signature_header_is_v1_comma_base64_hmac_over_id_dot_timestamp_dot_body() -> None:
    sent = envelope()
    [request] = await publish_against(ok, sent=sent, clock=lambda: 1_760_000_000.9)
    assert request.headers[WEBHOOK_TIMESTAMP_HEADER] == "1760000000"  # the attempt's time, in whole seconds
    signed = f"{sent['id']}.1760000000.".encode() + request.content
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert request.headers[WEBHOOK_SIGNATURE_HEADER] == f"v1,{expected}"


async def test_retries_of_one_delivery_keep_the_webhook_id_and_sign_a_new_timestamp() -> None:
    ticks = iter([1_760_000_000.0, 1_760_000_042.0])
    first, second = await publish_against(ok, clock=lambda: next(ticks), times=2)
    assert first.headers[WEBHOOK_ID_HEADER] == second.headers[WEBHOOK_ID_HEADER]
    assert (first.headers[WEBHOOK_TIMESTAMP_HEADER], second.headers[WEBHOOK_TIMESTAMP_HEADER]) == (
        "1760000000",
        "1760000042",
    )
    assert first.headers[WEBHOOK_SIGNATURE_HEADER] != second.headers[WEBHOOK_SIGNATURE_HEADER]


def _tampered(request: httpx.Request) -> tuple[bytes, dict[str, str], str]:
    return request.content.replace(b"acme", b"evil"), dict(request.headers), SECRET


def _wrong_secret(request: httpx.Request) -> tuple[bytes, dict[str, str], str]:
    return request.content, dict(request.headers), NEW_SECRET


def _other_id(request: httpx.Request) -> tuple[bytes, dict[str, str], str]:
    return request.content, {**request.headers, WEBHOOK_ID_HEADER: "another-event"}, SECRET


def _unsigned(request: httpx.Request) -> tuple[bytes, dict[str, str], str]:
    headers = {k: v for k, v in request.headers.items() if k != WEBHOOK_SIGNATURE_HEADER}
    return request.content, headers, SECRET


@pytest.mark.parametrize("change", [_tampered, _wrong_secret, _other_id, _unsigned])
async def test_a_tampered_body_a_wrong_secret_or_a_changed_id_is_refused_by_the_library(
    change: Callable[[httpx.Request], tuple[bytes, dict[str, str], str]],
) -> None:
    [request] = await publish_against(ok)
    body, headers, secret = change(request)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


@pytest.mark.parametrize("age_s, message", [(301, "too old"), (3600, "too old"), (-301, "too new")])
async def test_a_stale_or_future_timestamp_is_refused_by_the_library(age_s: int, message: str) -> None:
    [request] = await publish_against(ok, clock=lambda: time.time() - age_s)
    with pytest.raises(WebhookVerificationError, match=message):
        Webhook(SECRET).verify(request.content, dict(request.headers))


@pytest.mark.parametrize("separator", [" ", ",", ", ", "\n"])
async def test_during_a_rotation_receivers_on_the_old_or_the_new_secret_both_verify(separator: str) -> None:
    sent = envelope()
    [request] = await publish_against(ok, secret=f"{SECRET}{separator}{NEW_SECRET}", sent=sent)
    signatures = request.headers[WEBHOOK_SIGNATURE_HEADER].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for receivers_secret in (SECRET, NEW_SECRET):
        assert Webhook(receivers_secret).verify(request.content, dict(request.headers)) == sent
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"a receiver on neither key").decode()).verify(
            request.content, dict(request.headers)
        )


async def test_a_plain_secret_signs_with_its_bytes_as_whsec_plus_base64_of_them_does() -> None:
    plain = "an-old-plain-secret-0123"
    [request] = await publish_against(ok, secret=plain)
    converted = "whsec_" + base64.b64encode(plain.encode()).decode()
    assert Webhook(converted).verify(request.content, dict(request.headers), json_parse=False) is None
    assert parse_secrets(plain)[0].key == parse_secrets(converted)[0].key == plain.encode()
    assert parse_secrets(plain)[0].plain and not parse_secrets(converted)[0].plain


async def test_the_deprecated_tenants_signature_still_verifies_for_receivers_of_the_old_scheme() -> None:
    sent = envelope()
    [request] = await publish_against(ok, secret=f"{SECRET} {NEW_SECRET}", sent=sent, clock=lambda: 1_760_000_000)
    assert request.headers[LEGACY_EVENT_ID_HEADER] == sent["id"]
    # The old receiver-side check: HMAC-SHA256(key, "<t>.<raw body>"), hex, one v1= per key.
    parts = [p.split("=", 1) for p in request.headers[LEGACY_SIGNATURE_HEADER].split(",")]
    assert parts[0] == ["t", "1760000000"]
    for key in (KEY, NEW_KEY):
        expected = hmac.new(key, b"1760000000." + request.content, hashlib.sha256).hexdigest()
        assert ["v1", expected] in parts[1:]


def test_a_signing_key_never_shows_its_secret() -> None:
    [key] = parse_secrets(SECRET)
    assert SECRET[6:] not in repr(key) and "unit-test-key" not in repr(key)


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


# -- the webhook publisher's answers --------------------------------------------------------


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


def test_the_webhook_secret_is_one_or_several_whsec_secrets_or_plain_text() -> None:
    settings = load_settings(webhook_urls="https://a.example/h", webhook_secret=f" {SECRET}, {NEW_SECRET} {SECRET}")
    assert settings.webhook_secret is not None
    assert [k.key for k in parse_secrets(settings.webhook_secret.get_secret_value())] == [KEY, NEW_KEY]
    padded = "whsec_" + base64.b64encode(b"x" * 16).decode()
    assert padded.endswith("==")
    assert [k.key for k in parse_secrets(padded)] == [k.key for k in parse_secrets(padded.rstrip("="))] == [b"x" * 16]


@pytest.mark.parametrize(
    "secret, says",
    [
        ("whsec_not*base64!0123456789abcdef", "base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 12).decode(), "base64"),  # URL-safe alphabet
        ("whsec_" + base64.b64encode(b"x" * 15).decode(), "16 bytes"),
        ("whsec_", "base64"),
        ("short", "16"),
        (f"{SECRET} short", "secret 2 of 2"),
    ],
)
def test_a_bad_webhook_secret_is_refused_at_start_up_without_repeating_it(secret: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"TENANTS_WEBHOOK_SECRET: .*{says}") as bad:
        load_settings(webhook_urls="https://hooks.example/a", webhook_secret=secret)
    for part in secret.split():
        assert part.removeprefix("whsec_") not in str(bad.value) or len(part) < 7


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
