"""The credential x scope x route matrix.

Every /v1 operation of the app's own OpenAPI document (so a new route is in the matrix the moment
it exists) is called with every kind of credential: none, malformed, unknown, revoked, expired, an
unsigned JWT claiming every scope, a key holding each single scope, and a key holding all of them.
Bad credentials answer 401, a key without the route's scope 403, and a key with it gets past
authentication and authorization.

One app for the module (SQLite, worker off so that POSTs only register), keys made through
ApiKeyStore; every call is in-process.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.registry.api_keys import ApiKeyRecord, ApiKeyStore, new_key_id
from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from service.apikeys import ALL_SCOPES, generate_key, hash_key, public_prefix
from service.app import create_app
from service.cli import openapi_document

METHODS = {"get", "put", "post", "delete", "patch"}

# Which scope each route demands: the table README.md's "Scopes" section shows. A route missing
# here (or listed here but gone) fails test_every_route_has_a_scope until someone decides.
REQUIRED_SCOPE = {
    ("GET", "/v1/tenants"): "tenants:read",
    ("GET", "/v1/tenants/{tenant_id}"): "tenants:read",
    ("GET", "/v1/tenants/{tenant_id}/events"): "tenants:read",
    ("GET", "/v1/tiers"): "tenants:read",
    ("POST", "/v1/tenants"): "tenants:write",
    ("POST", "/v1/tenants/{tenant_id}/retry"): "tenants:write",
    ("DELETE", "/v1/tenants/{tenant_id}"): "tenants:delete",
    ("PATCH", "/v1/tenants/{tenant_id}"): "tenants:write",
    ("GET", "/v1/keys"): "keys:admin",
    ("POST", "/v1/keys"): "keys:admin",
    ("GET", "/v1/keys/{key_id}"): "keys:admin",
    ("DELETE", "/v1/keys/{key_id}"): "keys:admin",
}
TENANT = "matrix-main"
TENANT_BODY = {"tenant_id": TENANT, "tier": "basic", "display_name": "Matrix"}
# What a caller allowed in would send; a route not listed gets an empty JSON object (whatever it
# answers, it must not be 401/403).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/tenants"): TENANT_BODY,
    # keys:admin is the one scope every caller of this route holds (it grants only scopes it has).
    ("POST", "/v1/keys"): {"name": "matrix-made", "scopes": ["keys:admin"]},
}



def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# alg "none", claiming every scope: a token nobody signed (and this app has no JWKS configured).
UNSIGNED_JWT = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'x', 'scope': ' '.join(ALL_SCOPES)})}."


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads(openapi_document())
    return [
        (method.upper(), path, op)
        for path, item in sorted(document["paths"].items())
        if path.startswith("/v1/") or path == "/v1"
        for method, op in sorted(item.items())
        if method in METHODS
    ]


OPERATIONS = _operations()
ROUTE_IDS = [f"{m} {p}" for m, p, _ in OPERATIONS]


@dataclass(frozen=True)
class Credential:
    name: str
    header: str | None  # None: no Authorization header at all
    scope: str | None = None  # a good key with this one scope; "*" for all of them

    def allows(self, required: str) -> bool:
        return self.scope == "*" or self.scope == required


@dataclass
class World:
    client: Any
    credentials: dict[str, Credential]
    ids: dict[str, dict[str, str]]  # purpose -> path parameter -> value
    secrets: list[str]


def _record(name: str, scopes: tuple[str, ...], **dates: datetime) -> tuple[str, ApiKeyRecord]:
    key = generate_key()
    now = datetime.now(UTC)
    record = ApiKeyRecord(
        id=new_key_id(), name=name, prefix=public_prefix(key), key_hash=hash_key(key), scopes=scopes, created_at=now, **dates
    )
    return key, record


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    now = datetime.now(UTC)
    made: dict[str, tuple[str, ApiKeyRecord]] = {f"scope:{s}": _record(f"only {s}", (s,)) for s in ALL_SCOPES}
    made["all scopes"] = _record("all", ALL_SCOPES)
    made["revoked key"] = _record("revoked", ALL_SCOPES, revoked_at=now - timedelta(minutes=1))
    made["expired key"] = _record("expired", ALL_SCOPES, expires_at=now - timedelta(minutes=1))
    for purpose in ("target", "victim", "untouchable"):  # keys that routes act on, never used to call
        made[f"{purpose} key"] = _record(purpose, ("tenants:read",))
    engine = make_engine(url)
    try:
        store = ApiKeyStore(engine)
        for _, record in made.values():
            await store.add(record)
    finally:
        await engine.dispose()

    good = made["all scopes"][0]
    credentials = [
        Credential("no header", None),
        Credential("empty bearer", "Bearer "),
        Credential("basic scheme", f"Basic {good}"),
        Credential("no scheme", good),
        Credential("unknown key", f"Bearer {generate_key()}"),
        Credential("revoked key", f"Bearer {made['revoked key'][0]}"),
        Credential("expired key", f"Bearer {made['expired key'][0]}"),
        Credential("unsigned jwt", f"Bearer {UNSIGNED_JWT}"),
        *(Credential(f"scope:{s}", f"Bearer {made[f'scope:{s}'][0]}", s) for s in ALL_SCOPES),
        Credential("all scopes", f"Bearer {good}", "*"),
    ]
    ids = {
        purpose: {"tenant_id": f"matrix-{purpose}", "key_id": made[f"{purpose} key"][1].id}
        for purpose in ("target", "victim", "untouchable")
    }
    app = create_app(
        database_url=url,
        aws_endpoint_url=emulator_endpoint,
        worker_enabled=False,
        var_dir=tmp,
        rate_limit_burst=100_000,  # this is about who gets in, not how often
    )
    async with AsyncTestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {good}"
        for body in (TENANT_BODY, *({**TENANT_BODY, "tenant_id": p["tenant_id"]} for p in ids.values())):
            assert (await client.post("/v1/tenants", json=body)).status_code == 202
        del client.headers["Authorization"]
        yield World(client, {c.name: c for c in credentials}, ids, [k for k, _ in made.values()])


CREDENTIAL_NAMES = [
    "no header",
    "empty bearer",
    "basic scheme",
    "no scheme",
    "unknown key",
    "revoked key",
    "expired key",
    "unsigned jwt",
    *(f"scope:{s}" for s in ALL_SCOPES),
    "all scopes",
]


def _path(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ids:
            pytest.fail(f"{path}: no value for path parameter {{{name}}}; add one to the `world` fixture's ids")
        return ids[name]

    return re.sub(r"\{(\w+)\}", value, path)


async def _call(world: World, method: str, path: str, credential: Credential, ids: dict[str, str], body: Any) -> Any:
    headers = {} if credential.header is None else {"Authorization": credential.header}
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = body
    return await world.client.request(method, _path(path, ids), **kwargs)


def test_every_route_has_a_scope() -> None:
    routes = {(m, p) for m, p, _ in OPERATIONS}
    assert routes, "no /v1 routes found in the OpenAPI document"
    unlisted = sorted(routes - REQUIRED_SCOPE.keys())
    assert not unlisted, f"routes without a decided scope (add them to REQUIRED_SCOPE and README.md): {unlisted}"
    gone = sorted(REQUIRED_SCOPE.keys() - routes)
    assert not gone, f"REQUIRED_SCOPE lists routes the app no longer has: {gone}"


@pytest.mark.parametrize("credential_name", CREDENTIAL_NAMES)
@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=ROUTE_IDS)
async def test_matrix(world: World, method: str, path: str, op: dict[str, Any], credential_name: str) -> None:
    credential = world.credentials[credential_name]
    required = REQUIRED_SCOPE.get((method, path))
    # DELETE acts on its own tenant and key, so the other routes keep finding theirs.
    ids = world.ids["victim" if method == "DELETE" else "target"]
    response = await _call(world, method, path, credential, ids, BODIES.get((method, path), {}))
    where = f"{method} {path} with {credential.name}: {response.status_code} {response.text[:300]}"

    if credential.scope is None:
        assert response.status_code == 401, where
        assert response.headers["www-authenticate"].startswith("Bearer"), where
    elif required is None:
        pytest.fail(f"{method} {path}: no scope decided in REQUIRED_SCOPE")
    elif not credential.allows(required):
        assert response.status_code == 403, where
        assert required in response.json()["detail"], where  # says which scope is missing
    else:
        assert response.status_code not in (401, 403), where
        assert response.status_code < 500, where
        assert str(response.status_code) in op["responses"], f"undocumented status: {where}"
    if response.status_code in (401, 403):
        assert response.headers["content-type"].startswith("application/problem+json"), where
        assert response.json()["status"] == response.status_code, where
    for secret in world.secrets:
        assert secret not in response.text, where


async def test_a_refused_request_changes_nothing(world: World) -> None:
    """Every route called with every credential that must be refused (401 or 403) with a request
    that would create, delete or revoke something: afterwards all of it is as it was."""
    ids = world.ids["untouchable"]
    new_tenant = f"refused-{uuid.uuid4().hex[:8]}"
    bodies = {
        ("POST", "/v1/tenants"): {**TENANT_BODY, "tenant_id": new_tenant},
        ("POST", "/v1/keys"): {"name": "refused", "scopes": ["tenants:read"]},
    }
    admin = world.credentials["all scopes"]
    before_keys = (await _call(world, "GET", "/v1/keys", admin, {}, None)).json()["items"]
    before_tenant = (await _call(world, "GET", f"/v1/tenants/{ids['tenant_id']}", admin, {}, None)).json()
    calls = 0
    for method, path, _ in OPERATIONS:
        required = REQUIRED_SCOPE[(method, path)]
        for credential in world.credentials.values():
            if credential.scope is not None and credential.allows(required):
                continue
            response = await _call(world, method, path, credential, ids, bodies.get((method, path), {}))
            assert response.status_code in (401, 403), f"{method} {path} with {credential.name}: {response.status_code}"
            calls += 1
    assert calls > 50
    after_keys = (await _call(world, "GET", "/v1/keys", admin, {}, None)).json()["items"]
    ignore = {"last_used_at"}  # the refused calls with valid keys still count as uses
    assert [{k: v for k, v in key.items() if k not in ignore} for key in after_keys] == [
        {k: v for k, v in key.items() if k not in ignore} for key in before_keys
    ]
    assert (await _call(world, "GET", f"/v1/tenants/{ids['tenant_id']}", admin, {}, None)).json() == before_tenant
    assert (await _call(world, "GET", f"/v1/tenants/{new_tenant}", admin, {}, None)).status_code == 404


async def test_the_scheme_name_is_case_insensitive(world: World) -> None:
    """RFC 9110, 11.1: `bearer` and `BEARER` are the same scheme as `Bearer`."""
    token = world.credentials["scope:tenants:read"].header.split(" ", 1)[1]  # type: ignore[union-attr]
    for scheme in ("bearer", "BEARER"):
        response = await world.client.get("/v1/tiers", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, (scheme, response.text)
