"""The OpenAPI document: the committed copy under openapi/ is the one the app builds and serves,
and it documents every /v1 route's errors and security."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.cli import openapi_document, openapi_yaml
from tests.integration.test_api import make_app

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_JSON = ROOT / "openapi" / "openapi.json"
COMMITTED_YAML = ROOT / "openapi" / "openapi.yaml"
STALE = "the committed OpenAPI document is out of date with the code: run `make openapi` and commit openapi/"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def built() -> str:
    return openapi_document()


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    async with AsyncTestClient(make_app(tmp, emulator_endpoint, url)) as c:
        yield c


def operations(document: dict[str, Any], prefix: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in sorted(document["paths"].items())
        if path.startswith(prefix)
        for method, op in sorted(item.items())
        if method in METHODS
    ]


def test_committed_json_is_what_the_app_builds(built: str) -> None:
    assert COMMITTED_JSON.exists(), STALE
    committed = COMMITTED_JSON.read_text()
    assert json.loads(committed) == json.loads(built), STALE
    assert committed == built + "\n", STALE  # byte for byte, so `make openapi` leaves no diff


def test_committed_yaml_is_the_same_document(built: str) -> None:
    assert COMMITTED_YAML.exists(), STALE
    committed = COMMITTED_YAML.read_text()
    assert yaml.safe_load(committed) == json.loads(built), STALE
    assert committed == openapi_yaml(built), STALE


def test_the_document_is_deterministic(built: str) -> None:
    """Two builds in one process are identical (no generated examples, no set ordering)."""
    assert openapi_document() == built


async def test_the_app_serves_it_without_auth(client: Any, built: str) -> None:
    response = await client.get("/schema/openapi.json")  # no Authorization header at all
    assert response.status_code == 200, response.text
    assert "json" in response.headers["content-type"]
    assert response.json() == json.loads(built)
    assert response.json() == json.loads(COMMITTED_JSON.read_text()), STALE
    # ...while the API itself does need a key.
    assert (await client.get("/v1/tiers")).status_code == 401


def test_bearer_security_scheme_exists(built: str) -> None:
    document = json.loads(built)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert PROBLEM_REF.rsplit("/", 1)[1] in document["components"]["schemas"]


def test_every_v1_route_is_documented(built: str) -> None:
    document = json.loads(built)
    ops = operations(document, "/v1")
    assert {(m, p) for m, p, _ in ops} == {
        ("GET", "/v1/tenants"),
        ("POST", "/v1/tenants"),
        ("GET", "/v1/tenants/{tenant_id}"),
        ("DELETE", "/v1/tenants/{tenant_id}"),
        ("PATCH", "/v1/tenants/{tenant_id}"),
        ("POST", "/v1/tenants/{tenant_id}/retry"),
        ("GET", "/v1/tenants/{tenant_id}/events"),
        ("GET", "/v1/tiers"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/keys/{key_id}"),
        ("DELETE", "/v1/keys/{key_id}"),
    }
    for method, path, op in ops:
        where = f"{method} {path}"
        assert op.get("summary", "").strip(), f"{where}: no summary"
        assert op.get("description", "").strip(), f"{where}: no description"
        assert {"bearer": []} in op.get("security", []), f"{where}: not marked as needing the bearer API key"
        responses = op["responses"]
        expected = {"401", "403"}
        if "{tenant_id}" in path or "{key_id}" in path:
            expected.add("404")
        if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
            expected.add("422")
        missing = expected - responses.keys()
        assert not missing, f"{where}: undocumented error responses {sorted(missing)}"
        for status, response in responses.items():
            if int(status) < 400:
                continue
            # API.md: every error is RFC 9457 problem+json; no framework default shapes.
            assert list(response.get("content", {})) == ["application/problem+json"], f"{where} {status}: {response}"
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": PROBLEM_REF}, f"{where} {status}: {schema}"
            assert response.get("description", "").strip(), f"{where} {status}: no description"


def test_documented_success_statuses_match_api_md(built: str) -> None:
    ops = {(m, p): op for m, p, op in operations(json.loads(built))}
    success = {key: sorted(s for s in op["responses"] if int(s) < 400) for key, op in ops.items()}
    assert success[("POST", "/v1/tenants")] == ["200", "201", "202"]
    assert success[("DELETE", "/v1/tenants/{tenant_id}")] == ["200", "202"]
    assert success[("POST", "/v1/tenants/{tenant_id}/retry")] == ["202"]
    tenant_ref = {"$ref": "#/components/schemas/TenantOut"}
    for status in ("200", "201", "202"):
        assert ops[("POST", "/v1/tenants")]["responses"][status]["content"]["application/json"]["schema"] == tenant_ref


def test_health_routes_need_no_key(built: str) -> None:
    for method, path, op in operations(json.loads(built), "/health"):
        assert not op.get("security"), f"{method} {path} is documented as needing a key"
        assert re.fullmatch(r"/health/(live|ready)", path)


def _examples(content: dict[str, Any]) -> list[Any]:
    """The example values of one media type: OpenAPI `examples`/`example`, or the schema's own."""
    values = [e["value"] for e in content.get("examples", {}).values()]
    if "example" in content:
        values.append(content["example"])
    return values or list(content.get("schema", {}).get("examples", []))


def test_every_body_and_response_has_an_example_that_fits_its_schema(built: str) -> None:
    """Issue 5: every route has examples. Each one is also checked against the schema it
    illustrates, so an example cannot drift from the code it documents."""
    from jsonschema import Draft202012Validator

    document = json.loads(built)
    for method, path, op in operations(document):
        where = f"{method} {path}"
        bodies = [("request body", op["requestBody"])] if "requestBody" in op else []
        for label, part in [*bodies, *((f"response {s}", r) for s, r in op["responses"].items())]:
            content = part.get("content")
            assert content, f"{where} {label}: no content documented"
            for media_type, item in content.items():
                examples = _examples(item)
                assert examples, f"{where} {label} {media_type}: no example"
                if "json" not in media_type:
                    continue
                schema = {**item["schema"], "components": document["components"]}
                validator = Draft202012Validator(schema)
                for value in examples:
                    errors = [e.message for e in validator.iter_errors(value)]
                    assert not errors, f"{where} {label}: example does not fit the schema: {errors}"


def test_prefer_is_a_documented_header_where_it_works(built: str) -> None:
    """The generated client can send `Prefer: wait=N` only if the document declares it."""
    ops = {(m, p): op for m, p, op in operations(json.loads(built))}
    for key in [("POST", "/v1/tenants"), ("DELETE", "/v1/tenants/{tenant_id}")]:
        headers = {p["name"] for p in ops[key].get("parameters", []) if p["in"] == "header"}
        assert {"Prefer", "Idempotency-Key"} <= headers, f"{key}: {headers}"
