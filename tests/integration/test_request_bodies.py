"""Hostile request bodies over the in-process app (SQLite and PostgreSQL, the emulator over HTTP):
nesting too deep, a key twice, no body, a body that is not JSON, and the audit trail of an id the
registry never had. Each is a clear 4xx problem, never a 500, a traceback or a changed registry."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.logs import configure_logging
from tests.helpers import API_KEY, unique_id, wait_status
from tests.integration.conftest import BACKENDS
from tests.integration.databases import throwaway_database
from tests.integration.test_api import make_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
MAX_DEPTH = 32  # README, "Errors"


@pytest.fixture(scope="module", params=BACKENDS)
def postgres_for_bodies(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server_url")


@pytest.fixture(scope="module")
async def client(
    postgres_for_bodies: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("bodies")
    async with contextlib.AsyncExitStack() as stack:
        if postgres_for_bodies is None:
            url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres_for_bodies))
        await upgrade(url)
        async with AsyncTestClient(make_app(tmp, emulator_endpoint, url)) as c:
            c.headers.update(AUTH)
            yield c


@pytest.fixture
def app_log() -> Iterator[io.StringIO]:
    """Every log line of the app during the test, as JSON lines."""
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**saved_structlog)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def body(tenant_id: str, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "tier": "basic", "display_name": f"Tenant {tenant_id}", **extra}


def nested(depth: int) -> bytes:
    """A JSON array ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def assert_no_traceback(log: io.StringIO, *responses: Any) -> None:
    text = log.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    logged = {(e.get("request_id"), e.get("status")) for e in lines if e.get("event") == "request"}
    for response in responses:  # the capture works: each request has its access-log line
        assert (response.headers["x-request-id"], response.status_code) in logged
    assert "Traceback" not in text and "RecursionError" not in text
    assert not [e for e in lines if e.get("level") in ("error", "critical") or "exception" in e]


async def active_tenant(client: Any) -> dict[str, Any]:
    tenant_id = unique_id("body")
    created = await client.post("/v1/tenants", json=body(tenant_id), headers={"Prefer": "wait=30"})
    assert created.status_code == 201 and created.json()["status"] == "active", created.text
    return dict(created.json())


async def key_ids(client: Any) -> list[str]:
    return [k["id"] for k in (await client.get("/v1/keys")).json()["items"]]


# -- item 1: nesting depth -----------------------------------------------------------------------


async def test_a_body_nested_too_deep_is_400_on_every_body_route_without_a_traceback_or_a_change(
    client: Any, app_log: io.StringIO
) -> None:
    tenant = await active_tenant(client)
    tenant_id = tenant["tenant_id"]
    new_id = unique_id("deep")
    keys_before = await key_ids(client)
    deep = nested(990)  # 1,980 bytes
    attempts = [
        ("POST", "/v1/tenants", b'{"tenant_id":"%s","tier":"basic","display_name":"D","tags":%s}' % (new_id.encode(), deep), JSON),
        ("PATCH", f"/v1/tenants/{tenant_id}", b'{"tags":%s}' % deep, MERGE_PATCH),
        ("PATCH", f"/v1/tenants/{tenant_id}", b'{"tags":%s}' % deep, JSON),
        # The Idempotency-Key makes the service fingerprint the body: it must not decode it either.
        ("POST", f"/v1/tenants/{tenant_id}/retry", deep, {**JSON, "Idempotency-Key": unique_id("k")}),
        ("DELETE", f"/v1/tenants/{tenant_id}", deep, {**JSON, "Idempotency-Key": unique_id("k")}),
        ("POST", "/v1/keys", b'{"name":"deep","scopes":%s}' % deep, JSON),
        ("POST", "/v1/tenants", b'{"tenant_id":"%s","tier":"basic","display_name":"D","tags":%s}' % (new_id.encode(), nested(MAX_DEPTH)), JSON),
    ]
    responses = []
    for method, path, content, headers in attempts:
        response = await client.request(method, path, content=content, headers=headers)
        problem = assert_problem(response, 400)
        assert problem["code"] == "body_too_deep", problem
        assert f"nested deeper than {MAX_DEPTH}" in problem["detail"], problem
        assert problem["errors"][0]["field"] == "body"
        responses.append(response)

    assert_no_traceback(app_log, *responses)
    assert (await client.get(f"/v1/tenants/{new_id}")).status_code == 404
    assert (await client.get(f"/v1/tenants/{tenant_id}")).json() == tenant
    assert await key_ids(client) == keys_before


async def test_a_body_at_the_depth_limit_and_brackets_inside_strings_pass_the_depth_check(client: Any) -> None:
    # 32 levels (the object and 31 lists) reach the handler, which refuses the lists as tags: 422.
    at_limit = b'{"tenant_id":"%s","tier":"basic","display_name":"D","tags":%s}' % (unique_id("deep").encode(), nested(MAX_DEPTH - 1))
    response = await client.post("/v1/tenants", content=at_limit, headers=JSON)
    assert assert_problem(response, 422)["errors"][0]["field"] == "tags"
    # Brackets (and an escaped quote) inside a string are text, not nesting.
    name = '\\"' + "[" * 150 + "{" * 40
    created = await client.post("/v1/keys", content=b'{"name":"%s","scopes":["tenants:read"]}' % name.encode(), headers=JSON)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == '"' + "[" * 150 + "{" * 40


# -- item 4: Content-Type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "application/xml"}],
    ids=["text-plain", "none", "form", "xml"],
)
async def test_a_post_body_that_is_not_json_is_415_naming_the_accepted_type(client: Any, headers: dict[str, str]) -> None:
    tenant_id = unique_id("ctype")
    response = await client.post("/v1/tenants", content=json.dumps(body(tenant_id)).encode(), headers=headers)
    problem = assert_problem(response, 415)
    assert problem["code"] == "unsupported_media_type"
    assert "application/json" in problem["detail"]
    assert response.headers["accept-post"] == "application/json"
    assert response.headers["accept"] == "application/json"
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404

    keys_before = await key_ids(client)
    response = await client.post("/v1/keys", content=b'{"name":"ct","scopes":["tenants:read"]}', headers=headers)
    assert assert_problem(response, 415)["code"] == "unsupported_media_type"
    assert response.headers["accept-post"] == "application/json"
    assert await key_ids(client) == keys_before


async def test_a_patch_body_that_is_not_json_is_415_naming_both_accepted_types(client: Any) -> None:
    tenant = await active_tenant(client)
    path = f"/v1/tenants/{tenant['tenant_id']}"
    response = await client.patch(path, content=b'{"display_name":"Renamed"}', headers={"Content-Type": "text/plain"})
    problem = assert_problem(response, 415)
    assert "application/merge-patch+json" in problem["detail"] and "application/json" in problem["detail"]
    assert response.headers["accept-patch"] == "application/merge-patch+json, application/json"
    response = await client.patch(path, content=b'{"display_name":"Renamed"}')
    assert assert_problem(response, 415)["code"] == "unsupported_media_type"
    assert (await client.get(path)).json() == tenant
    # A body for a route that takes none is held to the same rule (the retry of an active tenant is
    # otherwise a 409).
    retry = await client.post(f"{path}/retry", content=b"please", headers={"Content-Type": "text/plain"})
    assert assert_problem(retry, 415)["code"] == "unsupported_media_type"
    assert retry.headers["accept-post"] == "application/json"


async def test_a_charset_utf8_parameter_and_upper_case_are_still_json(client: Any) -> None:
    tenant_id = unique_id("ctype")
    created = await client.post(
        "/v1/tenants", content=json.dumps(body(tenant_id)).encode(), headers={"Content-Type": "Application/JSON; charset=UTF-8"}
    )
    assert created.status_code == 202, created.text
    await wait_status(client, tenant_id, {"active", "failed"})
    patched = await client.patch(
        f"/v1/tenants/{tenant_id}",
        content=b'{"display_name":"Renamed"}',
        headers={"Content-Type": 'application/merge-patch+json;charset="utf-8"'},
    )
    assert patched.status_code == 202, patched.text
    latin = await client.post(
        "/v1/tenants", content=json.dumps(body(unique_id("ctype"))).encode(), headers={"Content-Type": "application/json; charset=latin-1"}
    )
    assert "UTF-8" in assert_problem(latin, 415)["detail"]


# -- item 5: no body ---------------------------------------------------------------------------


async def test_an_empty_body_says_what_to_send(client: Any) -> None:
    for headers in ({}, JSON):
        response = await client.post("/v1/tenants", content=b"", headers=headers)
        problem = assert_problem(response, 400)
        assert problem["code"] == "empty_body"
        assert problem["detail"] == "the request body is empty: send a JSON object with tenant_id, tier and display_name"
        assert problem["errors"] == [{"field": "body", "message": problem["detail"]}]
        assert "'data'" not in response.text
    keys = assert_problem(await client.post("/v1/keys", content=b"", headers=JSON), 400)
    assert keys["detail"] == "the request body is empty: send a JSON object with name and scopes"
    tenant = await active_tenant(client)
    patch = assert_problem(await client.patch(f"/v1/tenants/{tenant['tenant_id']}", content=b"", headers=MERGE_PATCH), 400)
    assert patch["code"] == "empty_body"
    assert "display_name" in patch["detail"] and "'data'" not in patch["detail"]
    # A route that takes no body still needs none.
    assert (await client.post(f"/v1/tenants/{tenant['tenant_id']}/retry", content=b"")).status_code == 409


# -- item 6: a key twice -----------------------------------------------------------------------


async def test_a_key_given_twice_is_400_naming_it_at_any_depth(client: Any) -> None:
    first, second = unique_id("dupa"), unique_id("dupb")
    twice = b'{"tenant_id":"%s","tier":"basic","display_name":"Dup","tenant_id":"%s"}' % (first.encode(), second.encode())
    problem = assert_problem(await client.post("/v1/tenants", content=twice, headers=JSON), 400)
    assert problem["code"] == "duplicate_key"
    assert problem["errors"] == [{"field": "tenant_id", "message": "appears twice in one JSON object"}]
    assert "tenant_id" in problem["detail"]
    for tenant_id in (first, second):
        assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404

    nested_twice = b'{"tenant_id":"%s","tier":"basic","display_name":"Dup","tags":{"team":"a","env":"x","team":"b"}}' % first.encode()
    problem = assert_problem(await client.post("/v1/tenants", content=nested_twice, headers=JSON), 400)
    assert problem["errors"][0]["field"] == "tags.team"
    assert (await client.get(f"/v1/tenants/{first}")).status_code == 404

    tenant = await active_tenant(client)
    path = f"/v1/tenants/{tenant['tenant_id']}"
    deep_twice = b'{"identity_providers":{"Google":{"type":"Google","client_id":"a","client_id":"b"}}}'
    problem = assert_problem(await client.patch(path, content=deep_twice, headers=MERGE_PATCH), 400)
    assert problem["errors"][0]["field"] == "identity_providers.Google.client_id"
    in_a_list = b'{"name":"dup","scopes":["tenants:read"],"x":[{"a":1,"a":2}]}'
    assert assert_problem(await client.post("/v1/keys", content=in_a_list, headers=JSON), 400)["errors"][0]["field"] == "x[0].a"
    assert (await client.get(path)).json() == tenant


# -- item 7: the events of an id the registry never had ----------------------------------------


async def test_events_of_an_id_the_registry_never_had_are_404_and_a_tombstone_keeps_its_own(client: Any) -> None:
    ghost = unique_id("ghost")
    assert (await client.delete(f"/v1/tenants/{ghost}")).status_code == 404  # refused, and recorded
    assert (await client.post(f"/v1/tenants/{ghost}/retry")).status_code == 404
    assert (await client.get(f"/v1/tenants/{ghost}")).status_code == 404
    events = await client.get(f"/v1/tenants/{ghost}/events")
    assert assert_problem(events, 404)["code"] == "tenant_not_found"

    tenant = await active_tenant(client)
    tenant_id = tenant["tenant_id"]
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    trail = await client.get(f"/v1/tenants/{tenant_id}/events")
    assert trail.status_code == 200, trail.text
    actions = {e["action"] for e in trail.json()["items"]}
    assert {"tenant.create", "tenant.active", "tenant.delete", "tenant.deleted"} <= actions, actions


# -- the same nesting in a bearer token's JOSE header ------------------------------------------


async def test_a_bearer_token_with_a_header_nested_too_deep_is_401_without_a_traceback(
    tmp_path: Any, emulator_endpoint: str, app_log: io.StringIO
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    await upgrade(url)
    # The JWKS is never fetched: the token is refused as not a JWT before any key is looked up.
    app = make_app(
        tmp_path,
        emulator_endpoint,
        url,
        worker_enabled=False,
        jwt_jwks_url="http://127.0.0.1:9/jwks.json",
        jwt_issuer="https://idp.example.test",
        jwt_audience="tenant-provisioner",
    )
    header = base64.urlsafe_b64encode(nested(3000)).decode().rstrip("=")
    async with AsyncTestClient(app) as client:
        response = await client.get("/v1/tiers", headers={"Authorization": f"Bearer {header}.e30.c2ln"})
    assert_problem(response, 401)
    assert_no_traceback(app_log)
    # The capture works: the request's access-log line (a 401 is answered outside the request-id
    # middleware, so the response carries no X-Request-ID to match it by).
    assert '"path": "/v1/tiers"' in app_log.getvalue() and '"status": 401' in app_log.getvalue()
