"""Limits as a client meets them: 429 per credential, 431 for large headers, 413 for large bodies,
422 for unknown body fields and query parameters; the OpenAPI document says so; OPTIONS tells the
truth. In-process app on SQLite with the worker off (nothing is provisioned), against the shared
emulator; the rate-limit clock is driven by the test, so recovery is shown without sleeping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.app import create_app
from service.cli import openapi_document
from tests.helpers import API_KEY, unique_id

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PROBLEM = "application/problem+json"


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _app(tmp: Path, endpoint: str, **overrides: Any) -> Any:
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    return create_app(
        database_url=url,
        aws_endpoint_url=endpoint,
        bootstrap_api_key=API_KEY,
        worker_enabled=False,
        var_dir=tmp,
        **overrides,
    )


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    app = await _app(tmp_path_factory.mktemp("limits"), emulator_endpoint, max_header_bytes=4096, max_body_bytes=2048)
    async with AsyncTestClient(app) as c:
        c.headers.update(AUTH)
        yield c


def _is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body  # type: ignore[no-any-return]


async def test_a_key_over_its_burst_gets_429_while_another_key_is_served(
    tmp_path: Path, emulator_endpoint: str
) -> None:
    app = await _app(tmp_path, emulator_endpoint, rate_limit_per_s=0.5, rate_limit_burst=3)
    clock = Clock()
    app.state.rate_limits.clock = clock
    async with AsyncTestClient(app) as client:
        made = await client.post("/v1/keys", headers=AUTH, json={"name": "reader", "scopes": ["tenants:read"]})
        assert made.status_code == 201, made.text
        reader = {"Authorization": f"Bearer {made.json()['key']}"}
        clock.now += 60  # the bootstrap key's bucket is full again

        remaining = []
        for _ in range(3):
            ok = await client.get("/v1/tiers", headers=AUTH)
            assert ok.status_code == 200, ok.text
            assert ok.headers["ratelimit-limit"] == "3"
            remaining.append(ok.headers["ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]

        limited = await client.get("/v1/tiers", headers=AUTH)
        body = _is_problem(limited, 429)
        assert body["code"] == "rate_limited"
        retry_after = int(limited.headers["retry-after"])
        assert retry_after >= 1
        assert retry_after == 2  # one token at 0.5 per second
        assert limited.headers["ratelimit-remaining"] == "0"
        assert limited.headers["x-request-id"]
        assert API_KEY not in limited.text
        # A refused request costs nothing: still 429, not a longer wait.
        again = await client.get("/v1/tenants", headers=AUTH)
        assert again.status_code == 429 and int(again.headers["retry-after"]) == retry_after

        # The same moment: the other key, no key at all, and the unauthenticated routes are unaffected.
        assert (await client.get("/v1/tiers", headers=reader)).status_code == 200
        assert (await client.get("/v1/tiers")).status_code == 401
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/schema/openapi.json")).status_code == 200

        clock.now += retry_after
        assert (await client.get("/v1/tiers", headers=AUTH)).status_code == 200


async def test_oversized_headers_get_431_before_authentication(client: Any) -> None:
    padding = {"X-Padding": "p" * 4000}
    body = _is_problem(await client.get("/v1/tiers", headers=padding), 431)
    assert body["code"] == "headers_too_large"
    assert "4096" in body["detail"]
    # Checked before the key is: a request with no valid key gets the same answer, not 401.
    _is_problem(await client.get("/v1/tiers", headers={**padding, "Authorization": "Bearer nope"}), 431)
    assert (await client.get("/v1/tiers", headers={"X-Padding": "p" * 3000})).status_code == 200


async def test_an_oversized_body_gets_413(client: Any) -> None:
    body = {"tenant_id": unique_id("big"), "tier": "basic", "display_name": "x" * 4000}
    _is_problem(await client.post("/v1/tenants", json=body), 413)


async def test_an_unknown_body_field_gets_422_naming_it(client: Any) -> None:
    tenant_id = unique_id("strict")
    body = {"tenant_id": tenant_id, "tier": "basic", "display_name": "Strict", "colour": "blue"}
    problem = _is_problem(await client.post("/v1/tenants", json=body), 422)
    assert [e["field"] for e in problem["errors"]] == ["colour"]
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404  # nothing was registered
    key_body = {"name": "strict", "scopes": ["tenants:read"], "admin": True}
    problem = _is_problem(await client.post("/v1/keys", json=key_body), 422)
    assert [e["field"] for e in problem["errors"]] == ["admin"]


@pytest.mark.parametrize(
    "email",
    ["boss@example.com\n", "bo\x85ss@example.com", "boss@exa\x1cmple.com", "boss\ufeff@example.com"],
    ids=["trailing-newline", "nel", "control", "bom"],
)
async def test_an_email_outside_the_documented_pattern_gets_422(client: Any, email: str) -> None:
    """Python's regexes (which check bodies) and JSON Schema's (which clients read) disagree on `$`
    and on what `\\s` is; the service holds to what the document says."""
    tenant_id = unique_id("mail")
    body = {"tenant_id": tenant_id, "tier": "standard", "display_name": "Mail", "admin_email": email}
    problem = _is_problem(await client.post("/v1/tenants", json=body), 422)
    assert [e["field"] for e in problem["errors"]] == ["admin_email"]
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404


async def test_an_unknown_query_parameter_gets_422_naming_it(client: Any) -> None:
    # A misspelt filter would otherwise be ignored and list every tenant.
    problem = _is_problem(await client.get("/v1/tenants", params={"stauts": "active", "limit": 5}), 422)
    assert [e["field"] for e in problem["errors"]] == ["stauts"]
    problem = _is_problem(await client.get("/v1/tiers", params={"b": "1", "a": "2"}), 422)
    assert [e["field"] for e in problem["errors"]] == ["a", "b"]
    assert (await client.get("/v1/tenants", params={"status": "active", "limit": 5})).status_code == 200
    # Not on the unauthenticated routes, which define no parameters to be strict about.
    assert (await client.get("/health/live", params={"probe": "1"})).status_code == 200


def test_the_document_states_the_limits_and_the_strict_bodies() -> None:
    document = json.loads(openapi_document())
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert {"422", "429", "431"} <= op["responses"].keys(), where
            assert "Retry-After" in op["responses"]["429"]["description"], where
            for media_type, content in op.get("requestBody", {}).get("content", {}).items():
                body = content["schema"]
                # A body with examples is {"allOf": [{"$ref": ...}], "examples": [...]}.
                ref = body.get("$ref") or body["allOf"][0]["$ref"]
                name = ref.rsplit("/", 1)[1]
                assert schemas[name]["additionalProperties"] is False, f"{where} {media_type}: {name} allows unknown fields"
    status = next(p for p in document["paths"]["/v1/tenants"]["get"]["parameters"] if p["name"] == "status")
    assert set(status["schema"]["enum"]) == {"provisioning", "active", "failed", "deprovisioning", "deleted"}


async def test_options_lists_every_method_of_the_path_without_a_key(client: Any) -> None:
    # Litestar 2 alone answers with the first registered handler's methods, and 403 under a
    # controller-wide scope guard (service/options.py).
    expected = {
        "/v1/tenants": "GET, OPTIONS, POST",
        "/v1/tenants/acme": "DELETE, GET, OPTIONS, PATCH",
        "/v1/keys": "GET, OPTIONS, POST",
        "/v1/keys/key_x": "DELETE, GET, OPTIONS",
    }
    for path, allow in expected.items():
        response = await client.options(path, headers={"Authorization": ""})
        assert (response.status_code, response.headers.get("allow")) == (204, allow), path
        assert response.headers["x-request-id"]
