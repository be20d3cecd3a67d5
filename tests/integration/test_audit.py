"""The audit trail over the in-process app (SQLite and PostgreSQL, the emulator over HTTP): who
did what to a tenant, when and with what result, at GET /v1/tenants/{tenant_id}/events."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from adapters.registry.api_keys import ApiKeyRecord, ApiKeyStore, hash_key
from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from adapters.registry.sql import SqlUnitOfWorkFactory
from adapters.registry.tables import audit_events
from domain.audit import AuditEvent
from domain.errors import RegistryUnavailable
from domain.provisioning import TEARDOWN_STEPS, provisioning_steps
from service.apikeys import public_prefix
from tests.helpers import API_KEY, unique_id, wait_status
from tests.integration.conftest import BACKENDS
from tests.integration.databases import throwaway_database
from tests.integration.test_api import make_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module", params=BACKENDS)
def postgres_for_audit(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server_url")


@pytest.fixture(scope="module")
async def registry_url(postgres_for_audit: str | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if postgres_for_audit is None:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('audit') / 'registry.db'}"
        await upgrade(url)
        yield url
        return
    async with throwaway_database(postgres_for_audit) as url:
        await upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def client(
    registry_url: str, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    app = make_app(tmp_path_factory.mktemp("audit-var"), emulator_endpoint, registry_url)
    async with AsyncTestClient(app) as c:
        c.headers.update(AUTH)
        yield c


@pytest.fixture(scope="module")
async def key_store(registry_url: str) -> AsyncIterator[ApiKeyStore]:
    """The API key table of the app's registry, through an engine of the test's own (the app's
    connections belong to the test client's event loop)."""
    engine = make_engine(registry_url)
    try:
        yield ApiKeyStore(engine)
    finally:
        await engine.dispose()


def body(tenant_id: str, tier: str = "basic", **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "tier": tier, "display_name": f"Tenant {tenant_id}", **extra}


async def events_of(client: Any, tenant_id: str, *, limit: int = 200, **headers: str) -> list[dict[str, Any]]:
    """Every event of the tenant, following next_cursor."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(f"/v1/tenants/{tenant_id}/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def second_key(key_store: ApiKeyStore, *scopes: str) -> tuple[str, str]:
    """Register another API key, as `tenantctl keys create` would; returns (key id, key)."""
    key = "tpk_" + secrets.token_urlsafe(32)
    key_id = "key_" + uuid.uuid4().hex[:16]
    record = ApiKeyRecord(
        id=key_id,
        name="audit-test",
        prefix=public_prefix(key),
        key_hash=hash_key(key),
        scopes=scopes,
        created_at=datetime.now(UTC),
    )
    await key_store.add(record)
    return key_id, key


def requests_in(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["action"], e["actor"], e["detail"]["status"]) for e in events if "status" in e["detail"]]


async def test_onboarding_and_teardown_are_recorded_in_order(client: Any) -> None:
    tenant_id = unique_id("audit")
    created = await client.post("/v1/tenants", json=body(tenant_id), headers={"X-Request-ID": f"create-{tenant_id}"})
    assert created.status_code == 202
    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    deleted = await client.delete(f"/v1/tenants/{tenant_id}")
    assert deleted.status_code == 202
    assert (await wait_status(client, tenant_id, {"deleted"}))["status"] == "deleted"

    events = await events_of(client, tenant_id)
    actions = [e["action"] for e in events]
    template = client.app.state.container.tiers["basic"]
    plan = [f"step.{s.name}" for s in provisioning_steps(template, with_admin=False)]
    teardown = [f"step.{s.name}" for s in TEARDOWN_STEPS]
    n = len(plan)
    assert actions[0] == "tenant.create"
    assert sorted(actions[1 : 1 + n]) == sorted(plan)  # concurrent steps: in the order they finished
    assert actions[1 + n : 3 + n] == ["tenant.active", "tenant.delete"]
    assert sorted(actions[3 + n : -1]) == sorted(teardown)
    assert actions[-1] == "tenant.deleted"
    assert len(actions) == 4 + n + len(teardown)

    create, delete = events[0], events[2 + n]
    assert (create["actor"], create["outcome"], create["detail"]["status"]) == ("key_bootstrap", "accepted", 202)
    assert create["request_id"] == f"create-{tenant_id}" == created.headers["x-request-id"]
    assert (delete["actor"], delete["detail"]["status"], delete["request_id"]) == (
        "key_bootstrap",
        202,
        deleted.headers["x-request-id"],
    )
    worker_events = [e for e in events if e["action"] not in ("tenant.create", "tenant.delete")]
    assert all(e["actor"].startswith("worker:") for e in worker_events)
    # Basic has no hosted-UI domain, client secret, guest role, extra roles or providers: their
    # teardown steps had nothing to delete and say so; every other step and run outcome is ok.
    lacks = {"delete_hosted_ui_domain", "delete_client_secret", "delete_unauth_role", "delete_extra_roles"}
    lacks.add("delete_identity_provider_secrets")
    assert {e["action"].removeprefix("step.") for e in worker_events if e["outcome"] == "skipped"} == lacks
    assert {e["outcome"] for e in worker_events if e["action"].removeprefix("step.") not in lacks} == {"ok"}
    assert all(e["detail"]["duration_ms"] >= 0 for e in worker_events if e["action"].startswith("step."))
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    stamps = [datetime.fromisoformat(e["at"]) for e in events]
    assert stamps == sorted(stamps) and all(t.tzinfo is not None for t in stamps)
    assert {e["tenant_id"] for e in events} == {tenant_id}
    assert API_KEY not in json.dumps(events)


async def test_refused_requests_are_recorded_with_their_status(client: Any) -> None:
    tenant_id = unique_id("audit")
    assert (await client.post("/v1/tenants", json=body(tenant_id))).status_code == 202
    conflict = await client.post("/v1/tenants", json=body(tenant_id, display_name="Someone else"))
    assert conflict.status_code == 409
    retry = await client.post(f"/v1/tenants/{tenant_id}/retry")
    assert retry.status_code == 409  # only a failed tenant can be retried
    invalid = await client.post("/v1/tenants", json=body(tenant_id, admin_email="not an email"))
    assert invalid.status_code == 422
    anonymous = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Authorization": "Bearer not-a-key"})
    assert anonymous.status_code == 401

    requests = [e for e in await events_of(client, tenant_id) if "status" in e["detail"]]
    assert [(e["action"], e["detail"]["status"], e["outcome"]) for e in requests] == [
        ("tenant.create", 202, "accepted"),
        ("tenant.create", 409, "refused"),
        ("tenant.retry", 409, "refused"),
        ("tenant.create", 422, "refused"),
    ]  # no 401: it names no principal, and recording it would let anyone write to the registry
    assert requests[1]["detail"]["code"] == "tenant_conflict"
    assert requests[1]["request_id"] == conflict.headers["x-request-id"]
    assert {e["actor"] for e in requests} == {"key_bootstrap"}


async def test_a_refused_request_about_an_unknown_id_is_kept_but_its_events_are_404(client: Any, registry_url: str) -> None:
    ghost = unique_id("ghost")
    response = await client.delete(f"/v1/tenants/{ghost}")
    assert response.status_code == 404
    engine = make_engine(registry_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(audit_events).where(audit_events.c.tenant_id == ghost))).all()
    finally:
        await engine.dispose()
    [event] = [r._mapping for r in rows]
    assert (event["action"], event["outcome"], event["detail"], event["request_id"]) == (
        "tenant.delete",
        "refused",
        {"status": 404, "code": "tenant_not_found"},
        response.headers["x-request-id"],
    )

    # Like GET /v1/tenants/{ghost}: an id the registry never had a tenant under is a 404.
    for never in (ghost, unique_id("never")):
        assert (await client.get(f"/v1/tenants/{never}/events")).status_code == 404
    never = await client.get(f"/v1/tenants/{unique_id('never')}/events")
    assert never.status_code == 404
    assert never.headers["content-type"].startswith("application/problem+json")
    assert never.json()["code"] == "tenant_not_found"


async def test_another_key_is_another_actor_and_no_key_reaches_the_trail(client: Any, key_store: ApiKeyStore) -> None:
    writer_id, writer_key = await second_key(key_store, "tenants:read", "tenants:write")
    tenant_id = unique_id("audit")
    response = await client.post("/v1/tenants", json=body(tenant_id), headers={"Authorization": f"Bearer {writer_key}"})
    assert response.status_code == 202
    # The writer may not delete: 403, recorded under the writer's id.
    forbidden = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Authorization": f"Bearer {writer_key}"})
    assert forbidden.status_code == 403
    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code in (200, 202)

    events = await events_of(client, tenant_id, Authorization=f"Bearer {writer_key}")
    assert requests_in(events) == [
        ("tenant.create", writer_id, 202),
        ("tenant.delete", writer_id, 403),
        ("tenant.delete", "key_bootstrap", 202),
    ]
    text = json.dumps(events)
    for secret in (writer_key, API_KEY, hash_key(writer_key), hash_key(API_KEY)):
        assert secret not in text


async def test_an_idempotent_replay_is_recorded_as_a_replay(client: Any) -> None:
    tenant_id = unique_id("audit")
    headers = {"Idempotency-Key": f"create-{tenant_id}"}
    first = await client.post("/v1/tenants", json=body(tenant_id), headers=headers)
    again = await client.post("/v1/tenants", json=body(tenant_id), headers=headers)
    assert (first.status_code, again.status_code, again.headers.get("idempotent-replayed")) == (202, 202, "true")

    requests = [e for e in await events_of(client, tenant_id) if "status" in e["detail"]]
    assert [(e["action"], e["detail"]) for e in requests] == [
        ("tenant.create", {"status": 202}),
        ("tenant.create", {"status": 202, "replayed": True}),
    ]
    assert requests[1]["request_id"] == again.headers["x-request-id"] != first.headers["x-request-id"]


async def test_events_are_paginated_by_cursor(client: Any) -> None:
    tenant_id = unique_id("audit")
    await client.post("/v1/tenants", json=body(tenant_id))
    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    everything = await events_of(client, tenant_id)
    assert len(everything) > 3

    paged = await events_of(client, tenant_id, limit=2)
    assert paged == everything

    first = (await client.get(f"/v1/tenants/{tenant_id}/events", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await client.get(f"/v1/tenants/{tenant_id}/events", params=params)).json()
    assert second["items"] == everything[2:4]

    for params in ({"cursor": "bm90LWEtY3Vyc29y"}, {"limit": 0}, {"limit": 201}):
        bad = await client.get(f"/v1/tenants/{tenant_id}/events", params=params)
        assert bad.status_code == 422, params


async def test_reading_events_needs_the_read_scope(client: Any, key_store: ApiKeyStore) -> None:
    _, deleter_key = await second_key(key_store, "tenants:delete")
    tenant_id = unique_id("audit")
    await client.post("/v1/tenants", json=body(tenant_id))
    response = await client.get(f"/v1/tenants/{tenant_id}/events", headers={"Authorization": f"Bearer {deleter_key}"})
    assert response.status_code == 403
    assert (await client.get(f"/v1/tenants/{tenant_id}/events", headers={"Authorization": ""})).status_code == 401


async def test_a_failing_audit_write_does_not_fail_the_request(client: Any) -> None:
    container = client.app.state.container
    original = container.record_event

    async def unavailable(event: AuditEvent) -> None:
        raise RegistryUnavailable("the registry is unavailable")

    container.record_event = unavailable
    tenant_id = unique_id("audit")
    try:
        response = await client.post("/v1/tenants", json=body(tenant_id))
    finally:
        container.record_event = original
    assert response.status_code == 202
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 200


async def test_the_sql_audit_log_commits_and_rolls_back_with_its_transaction(uow_factory: SqlUnitOfWorkFactory) -> None:
    tenant_id = unique_id("audit")
    at = datetime(2025, 3, 1, 12, 0, 0, 250, tzinfo=UTC)
    detail = {"duration_ms": 1.5, "n": [1, 2]}
    event = AuditEvent(tenant_id, at, "worker:h:1:x", "step.user_pool", "ok", detail, "req-1")
    async with uow_factory() as uow:
        await uow.events.add(event)  # never committed
    async with uow_factory() as uow:
        assert await uow.events.list_for_tenant(tenant_id, limit=10, after_id=None) == []
        await uow.events.add(event)
        await uow.events.add(AuditEvent(None, at, "key_x", "tenant.create", "refused", {"status": 422}))
        await uow.commit()
    async with uow_factory() as uow:
        [stored] = await uow.events.list_for_tenant(tenant_id, limit=10, after_id=None)
        assert stored.id is not None
        assert stored == AuditEvent(**{**_fields(event), "id": stored.id})
        assert stored.at.tzinfo is UTC
        assert await uow.events.list_for_tenant(tenant_id, limit=10, after_id=stored.id) == []


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in AuditEvent.__dataclass_fields__}


async def test_key_routes_are_recorded_without_the_key(client: Any, registry_url: str) -> None:
    created = await client.post("/v1/keys", json={"name": f"audit-{uuid.uuid4().hex[:8]}", "scopes": ["tenants:read"]})
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    assert (await client.delete(f"/v1/keys/{key_id}")).status_code == 200

    engine = make_engine(registry_url)
    try:
        async with engine.connect() as conn:
            query = select(audit_events).where(audit_events.c.action.like("key.%")).order_by(audit_events.c.id)
            rows = (await conn.execute(query)).all()
    finally:
        await engine.dispose()
    request_id = created.headers["x-request-id"]
    mine = [r._mapping for r in rows if r.detail.get("key_id") == key_id or r.request_id == request_id]
    assert [(m["action"], m["actor"], m["detail"]["status"], m["tenant_id"]) for m in mine] == [
        ("key.create", "key_bootstrap", 201, None),
        ("key.delete", "key_bootstrap", 200, None),
    ]
    assert key not in json.dumps([{**m, "at": str(m["at"])} for m in mine])
