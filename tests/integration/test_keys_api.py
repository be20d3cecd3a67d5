"""`/v1/keys` in-process: create (the key shown once), list, get, revoke; strict bodies; a caller
grants only scopes it holds; `last_used_at` kept without a write per request."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from adapters.registry.engine import transaction
from adapters.registry.migrate import upgrade
from adapters.registry.tables import api_keys
from service.app import create_app
from tests.helpers import API_KEY, unique_id

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> AsyncIterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("keys-api")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    app = create_app(
        database_url=url, aws_endpoint_url=emulator_endpoint, worker_enabled=False, bootstrap_api_key=API_KEY, var_dir=tmp
    )
    async with AsyncTestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {API_KEY}"  # the bootstrap key: every scope
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(client: Any, *scopes: str, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/keys", json={"name": unique_id("k"), "scopes": list(scopes), **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_created_key_is_shown_once_and_works_with_its_scopes(client: Any) -> None:
    response = await client.post("/v1/keys", json={"name": "billing", "scopes": ["tenants:read", "tenants:write"]})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    made = response.json()
    assert response.headers["location"] == f"/v1/keys/{made['id']}"
    key = made["key"]
    assert key.startswith(made["prefix"]) and len(key) >= 40
    assert made["scopes"] == ["tenants:read", "tenants:write"]
    assert made["status"] == "active" and made["expires_at"] is None and made["revoked_at"] is None

    assert (await client.get("/v1/tiers", headers=bearer(key))).status_code == 200
    forbidden = await client.get("/v1/keys", headers=bearer(key))
    assert forbidden.status_code == 403 and "keys:admin" in forbidden.json()["detail"]

    digest = hashlib.sha256(key.encode()).hexdigest()
    listing = await client.get("/v1/keys")
    one = await client.get(f"/v1/keys/{made['id']}")
    for answer in (listing, one):
        assert answer.status_code == 200
        assert key not in answer.text and digest not in answer.text and "hash" not in answer.text
    assert {k["id"]: k for k in listing.json()["items"]}[made["id"]] == one.json()
    same = lambda view: {k: v for k, v in view.items() if k not in ("key", "last_used_at")}  # noqa: E731
    assert same(one.json()) == same(made)
    assert "key_bootstrap" in {k["id"] for k in listing.json()["items"]}


async def test_revoke(client: Any) -> None:
    made = await create(client, "tenants:read")
    assert (await client.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 200

    revoked = await client.delete(f"/v1/keys/{made['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    refused = await client.get("/v1/tiers", headers=bearer(made["key"]))
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")

    again = await client.delete(f"/v1/keys/{made['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]

    for method in ("get", "delete"):
        missing = await client.request(method.upper(), "/v1/keys/key_0000000000000000")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith(PROBLEM)
        assert missing.json()["code"] == "api_key_not_found"


async def test_a_key_with_an_expiry(client: Any) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    made = await create(client, "tenants:read", expires_at=soon.isoformat())
    assert datetime.fromisoformat(made["expires_at"]) == soon
    assert (await client.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["tenants:read"], "admin": True}, "admin"),
        ({"name": "x", "scopes": ["tenants:admin"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x"}, "scopes"),
        ({"name": "", "scopes": ["tenants:read"]}, "name"),
        ({"name": "a\nb", "scopes": ["tenants:read"]}, "name"),
        ({"name": "x", "scopes": ["tenants:read"], "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "scopes": ["tenants:read"], "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "scopes": ["tenants:read"], "key_hash": "0" * 64}, "key_hash"),
    ],
    ids=["unknown-field", "unknown-scope", "no-scope", "scopes-missing", "empty-name", "control-char", "past", "naive", "own-hash"],
)
async def test_invalid_bodies_are_422_naming_the_field(client: Any, body: dict[str, Any], field: str) -> None:
    before = len((await client.get("/v1/keys")).json()["items"])
    response = await client.post("/v1/keys", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.text
    assert len((await client.get("/v1/keys")).json()["items"]) == before


async def test_a_caller_grants_only_scopes_it_holds(client: Any) -> None:
    admin_only = await create(client, "keys:admin")
    refused = await client.post(
        "/v1/keys", json={"name": "escalate", "scopes": ["keys:admin", "tenants:delete"]}, headers=bearer(admin_only["key"])
    )
    assert refused.status_code == 403, refused.text
    assert "tenants:delete" in refused.json()["detail"]
    names = {k["name"] for k in (await client.get("/v1/keys")).json()["items"]}
    assert "escalate" not in names
    # What it holds it can pass on.
    await create(client, "keys:admin", headers=bearer(admin_only["key"]))


async def test_last_used_at_is_kept_at_most_once_a_minute(client: Any) -> None:
    made = await create(client, "tenants:read")
    assert made["last_used_at"] is None

    async def last_used() -> datetime:
        value = (await client.get(f"/v1/keys/{made['id']}")).json()["last_used_at"]
        assert value is not None
        return datetime.fromisoformat(value)

    before = datetime.now(UTC)
    await client.get("/v1/tiers", headers=bearer(made["key"]))
    first = await last_used()
    assert first >= before
    await client.get("/v1/tiers", headers=bearer(made["key"]))
    assert await last_used() == first  # used again within the minute: not written again

    # A use more than a minute after the recorded one is recorded.
    engine = client.app.state.container.engine
    async with transaction(engine, write=True) as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == made["id"]).values(last_used_at=first - timedelta(minutes=2)))
    client.app.state.container.key_cache.forget(made["id"])  # a minute on, its cache entry is long due
    await client.get("/v1/tiers", headers=bearer(made["key"]))
    assert await last_used() >= first


async def test_a_key_revoked_by_another_process_is_refused_once_its_cache_entry_is_due(client: Any) -> None:
    """Verified keys are cached for TENANTS_API_KEY_CACHE_S (5 s): a revocation written to the
    registry by another process (tenantctl, another replica) is honoured when the entry is due,
    never later. The cache's clock is driven by hand here, so nothing depends on timing."""
    container = client.app.state.container
    clock = {"t": 0.0}
    container.key_cache.clock = lambda: clock["t"]
    made = await create(client, "tenants:read")
    assert (await client.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 200

    async with transaction(container.engine, write=True) as conn:  # as `tenantctl keys revoke` does
        await conn.execute(update(api_keys).where(api_keys.c.id == made["id"]).values(revoked_at=datetime.now(UTC)))
    clock["t"] += container.settings.api_key_cache_s - 0.01
    assert (await client.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 200  # within the bound
    clock["t"] += 0.01
    assert (await client.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 401
