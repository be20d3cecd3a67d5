"""Idempotency-Key on POST /v1/tenants, DELETE /v1/tenants/{id} and POST /v1/tenants/{id}/retry,
in-process on SQLite and PostgreSQL, against the emulator over HTTP.

Litestar's test client runs the app on its own event loop in a portal thread, and each request
blocks the caller until it is answered. Concurrent requests are therefore sent from threads
(``in_parallel``), and the app's registry is used through the portal (``in_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from litestar.testing import transport as litestar_transport
from sqlalchemy import select, text, update

from adapters.registry.api_keys import ApiKeyRecord, hash_key
from adapters.registry.migrate import upgrade
from adapters.registry.tables import idempotency_keys
from domain.errors import RegistryUnavailable
from service.apikeys import ALL_SCOPES
from service.idempotency import is_stored
from tests.helpers import API_KEY, boto, identity_pools_named, pools_named, roles_with_prefix, unique_id, wait_status
from tests.integration.conftest import BACKENDS
from tests.integration.databases import throwaway_database
from tests.integration.test_api import AUTH, PREFIX, body, make_app

IDEMPOTENCY_PROBLEMS = "https://tenant-provisioner.dev/problems/idempotency-key-"


def new_key() -> str:
    return str(uuid.uuid4())


def keyed(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


@pytest.fixture(scope="module", params=BACKENDS)
def postgres_server(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server to make the API's registry on, or None for SQLite."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server_url")


@contextlib.asynccontextmanager
async def serving(postgres: str | None, tmp: Path, endpoint: str, **overrides: Any) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:
        if postgres is None:
            url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres))
        await upgrade(url)
        async with AsyncTestClient(make_app(tmp, endpoint, url, **overrides)) as c:
            c.headers.update(AUTH)
            yield c


@pytest.fixture(scope="module")
async def client(
    postgres_server: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    async with serving(postgres_server, tmp_path_factory.mktemp("idem"), emulator_endpoint) as c:
        yield c


@pytest.fixture(scope="module")
async def idle_client(
    postgres_server: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    """No worker: nothing provisions, so a request with ``Prefer: wait=N`` stays in flight N s."""
    async with serving(postgres_server, tmp_path_factory.mktemp("idem-idle"), emulator_endpoint, worker_enabled=False) as c:
        yield c


def container(client: Any) -> Any:
    return client.app.state.container


def in_app(client: Any, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``fn(*args)`` on the app's event loop (where its engine's connections live)."""
    return client.blocking_portal.call(fn, *args)


class PortalTransport(httpx.BaseTransport):
    """The test client's own transport (into the app's portal), for a synchronous httpx client."""

    def __init__(self, client: Any) -> None:
        self._inner = litestar_transport.TestClientTransport(client)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)


async def in_parallel(client: Any, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every request at once, each from its own thread, and return the responses in order."""
    loop = asyncio.get_running_loop()
    with (
        httpx.Client(transport=PortalTransport(client), base_url=client.base_url, headers=client.headers) as sync,
        ThreadPoolExecutor(max_workers=len(requests)) as pool,
    ):
        futures = [loop.run_in_executor(pool, functools.partial(sync.request, **r)) for r in requests]
        return list(await asyncio.gather(*futures))


async def expire(client: Any, key: str) -> None:
    async def run() -> None:
        async with container(client).engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    in_app(client, run)


def stored_entry(client: Any, key: str) -> Any:
    async def run() -> Any:
        async with container(client).engine.connect() as conn:
            return (await conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))).first()

    return in_app(client, run)


def assert_replay_of(replay: Any, first: Any) -> None:
    assert replay.status_code == first.status_code
    assert replay.content == first.content  # byte for byte
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"] == first.headers["content-type"]
    assert replay.headers.get("location") == first.headers.get("location")
    assert replay.headers.get("preference-applied") == first.headers.get("preference-applied")
    assert "idempotent-replayed" not in first.headers


async def test_a_repeat_replays_the_first_response_and_provisions_nothing_more(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("idem")
    key = new_key()
    first = await client.post("/v1/tenants", json=body(tenant_id, "standard"), headers=keyed(key))
    assert first.status_code == 202, first.text
    assert first.headers["location"] == f"/v1/tenants/{tenant_id}"

    again = await client.post("/v1/tenants", json=body(tenant_id, "standard"), headers=keyed(key))
    assert_replay_of(again, first)

    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    # Still the first answer ("provisioning"), even with the same JSON spaced and ordered otherwise.
    reordered = json.dumps(dict(reversed(list(body(tenant_id, "standard").items()))), indent=2).encode()
    late = await client.post("/v1/tenants", content=reordered, headers=keyed(key, **{"Content-Type": "application/json"}))
    assert_replay_of(late, first)
    assert late.json()["status"] == "provisioning"
    # Without the key: today's behaviour, the tenant as it is.
    plain = await client.post("/v1/tenants", json=body(tenant_id, "standard"))
    assert plain.status_code == 200 and plain.json()["status"] == "active"
    assert "idempotent-replayed" not in plain.headers

    name = f"{PREFIX}-{tenant_id}"
    assert len(pools_named(emulator_endpoint, name)) == 1
    assert len(identity_pools_named(emulator_endpoint, name)) == 1
    assert roles_with_prefix(emulator_endpoint, f"{name}-") == [f"{name}-auth"]
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_the_answer_after_prefer_wait_is_stored_and_prefer_is_not_part_of_the_request(client: Any) -> None:
    tenant_id = unique_id("idwait")
    key = new_key()
    first = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key, Prefer="wait=30"))
    assert first.status_code == 201, first.text
    assert first.headers["preference-applied"] == "wait=30"
    replay = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))  # no Prefer
    assert_replay_of(replay, first)
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_the_same_key_with_another_request_is_422_and_runs_nothing(client: Any) -> None:
    tenant_id, other_id = unique_id("idmis"), unique_id("idmis")
    key = new_key()
    assert (await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))).status_code == 202
    for method, path, payload in [
        ("POST", "/v1/tenants", body(other_id)),  # another body
        ("POST", "/v1/tenants", body(tenant_id, display_name="Renamed")),
        ("DELETE", f"/v1/tenants/{tenant_id}", None),  # another method and path
        ("POST", f"/v1/tenants/{tenant_id}/retry", None),
    ]:
        response = await client.request(method, path, json=payload, headers=keyed(key))
        assert response.status_code == 422, (method, path, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["type"] == IDEMPOTENCY_PROBLEMS + "mismatch"
        assert "different request" in problem["detail"]
        assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert (await client.get(f"/v1/tenants/{other_id}")).status_code == 404
    tenant = await wait_status(client, tenant_id, {"active", "failed"})
    assert (tenant["status"], tenant["display_name"]) == ("active", f"Tenant {tenant_id}")  # nothing else ran
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_the_same_key_while_the_first_request_runs_is_409(idle_client: Any) -> None:
    tenant_id = unique_id("idbusy")
    key = new_key()
    first_request = asyncio.ensure_future(
        in_parallel(idle_client, [{"method": "POST", "url": "/v1/tenants", "json": body(tenant_id), "headers": keyed(key, Prefer="wait=3")}])
    )
    # With no worker, the first request waits its full 3 s once the tenant is registered.
    while (await idle_client.get(f"/v1/tenants/{tenant_id}")).status_code == 404:
        assert not first_request.done(), first_request.result()[0].text
        await asyncio.sleep(0.01)

    busy = await idle_client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert not first_request.done()
    assert busy.status_code == 409, busy.text
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"] == IDEMPOTENCY_PROBLEMS + "in-progress"
    assert "still in progress" in busy.json()["detail"]
    other = await idle_client.post("/v1/tenants", json=body(tenant_id, "premium"), headers=keyed(key))
    assert other.status_code == 422 and other.json()["type"] == IDEMPOTENCY_PROBLEMS + "mismatch"

    (first,) = await first_request
    assert first.status_code == 202 and "preference-applied" not in first.headers
    assert_replay_of(await idle_client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key)), first)


async def test_keys_are_scoped_to_the_api_key(client: Any) -> None:
    second_secret = "tpk_second_" + uuid.uuid4().hex + uuid.uuid4().hex
    in_app(
        client,
        container(client).api_keys.add,
        ApiKeyRecord(
            id="key_" + uuid.uuid4().hex[:16],
            name="second",
            prefix=second_secret[:10],
            key_hash=hash_key(second_secret),
            scopes=tuple(ALL_SCOPES),
            created_at=datetime.now(UTC),
        ),
    )
    second = {"Authorization": f"Bearer {second_secret}"}
    tenant_id = unique_id("idscope")
    key = new_key()
    first = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert first.status_code == 202

    # The same Idempotency-Key from another API key is another request: "same spec again".
    theirs = await client.post("/v1/tenants", json=body(tenant_id), headers={**second, **keyed(key)})
    assert theirs.status_code == 200, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    # ...and each API key gets its own first answer back.
    assert_replay_of(await client.post("/v1/tenants", json=body(tenant_id), headers={**second, **keyed(key)}), theirs)
    assert_replay_of(await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key)), first)
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_fifty_concurrent_onboardings_make_one_tenant_and_one_set_of_resources(
    client: Any, emulator_endpoint: str
) -> None:
    tenant_id = unique_id("idrace")
    shared = new_key()
    headers = [keyed(shared)] * 25 + [keyed(new_key()) for _ in range(15)] + [{}] * 10
    responses = await in_parallel(
        client, [{"method": "POST", "url": "/v1/tenants", "json": body(tenant_id), "headers": h} for h in headers]
    )

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 201, 202, 409}, [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    created = [r for r in responses if r.status_code == 202 and "idempotent-replayed" not in r.headers]
    assert len(created) == 1, statuses
    for response, sent in zip(responses, headers, strict=True):
        if response.status_code == 409:  # only a shared key's request can still be running
            assert sent.get("Idempotency-Key") == shared
            assert response.json()["type"] == IDEMPOTENCY_PROBLEMS + "in-progress"
    # Whatever the shared key's first request answered is what every later repeat gets.
    stored = [r for r, h in zip(responses, headers, strict=True) if h.get("Idempotency-Key") == shared and r.status_code != 409]
    assert stored and len({(r.status_code, r.content) for r in stored}) == 1

    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    name = f"{PREFIX}-{tenant_id}"
    assert len(pools_named(emulator_endpoint, name)) == 1
    assert len(identity_pools_named(emulator_endpoint, name)) == 1
    assert roles_with_prefix(emulator_endpoint, f"{name}-") == [f"{name}-auth"]
    page = (await client.get("/v1/tenants", params={"limit": 200, "tier": "basic"})).json()
    assert [t["tenant_id"] for t in page["items"]].count(tenant_id) == 1
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


async def test_an_expired_key_is_new_again(client: Any) -> None:
    first_id, second_id = unique_id("idexp"), unique_id("idexp")
    key = new_key()
    assert (await client.post("/v1/tenants", json=body(first_id), headers=keyed(key))).status_code == 202
    await expire(client, key)
    # Another request under the expired key runs, rather than being a mismatch.
    second = await client.post("/v1/tenants", json=body(second_id), headers=keyed(key))
    assert second.status_code == 202, second.text
    assert second.json()["tenant_id"] == second_id
    assert_replay_of(await client.post("/v1/tenants", json=body(second_id), headers=keyed(key)), second)
    for tenant_id in (first_id, second_id):
        await wait_status(client, tenant_id, {"active", "failed"})
        await client.delete(f"/v1/tenants/{tenant_id}")


async def test_the_purger_deletes_expired_entries(client: Any) -> None:
    key = new_key()
    await client.post("/v1/tenants/no-such-tenant/retry", headers=keyed(key))  # a stored 404
    assert stored_entry(client, key) is not None
    await expire(client, key)
    assert in_app(client, container(client).idempotency_purger.purge_once) >= 1
    assert stored_entry(client, key) is None


async def test_delete_and_retry_replay(client: Any, emulator_endpoint: str) -> None:
    tenant_id = unique_id("idret")
    iam = boto("iam", emulator_endpoint)
    role_name = f"{PREFIX}-{tenant_id}-auth"
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')
    await client.post("/v1/tenants", json=body(tenant_id))
    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "failed"
    iam.delete_role(RoleName=role_name)

    retry_key = new_key()
    retried = await client.post(f"/v1/tenants/{tenant_id}/retry", headers=keyed(retry_key))
    assert retried.status_code == 202, retried.text
    assert (await wait_status(client, tenant_id, {"active", "failed"}))["status"] == "active"
    assert_replay_of(await client.post(f"/v1/tenants/{tenant_id}/retry", headers=keyed(retry_key)), retried)
    assert (await client.post(f"/v1/tenants/{tenant_id}/retry")).status_code == 409  # without: not failed

    delete_key = new_key()
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers=keyed(delete_key))
    assert deleted.status_code == 202 and deleted.json()["status"] == "deprovisioning"
    assert (await wait_status(client, tenant_id, {"deleted"}))["status"] == "deleted"
    assert_replay_of(await client.delete(f"/v1/tenants/{tenant_id}", headers=keyed(delete_key)), deleted)
    assert (await client.delete(f"/v1/tenants/{tenant_id}")).status_code == 200
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []

    # A 404 is the outcome of its request too, and is replayed as such.
    missing_key = new_key()
    missing = await client.delete(f"/v1/tenants/{unique_id('ghost')}", headers=keyed(missing_key))
    assert missing.status_code == 404
    assert_replay_of(await client.delete(missing.request.url.path, headers=keyed(missing_key)), missing)


async def test_a_conflict_is_stored_as_the_keys_answer(client: Any) -> None:
    tenant_id = unique_id("idconf")
    await client.post("/v1/tenants", json=body(tenant_id), headers={"Prefer": "wait=30"})
    key = new_key()
    conflict = await client.post("/v1/tenants", json=body(tenant_id, "premium"), headers=keyed(key))
    assert conflict.status_code == 409 and conflict.json()["tenant_status"] == "active"
    assert_replay_of(await client.post("/v1/tenants", json=body(tenant_id, "premium"), headers=keyed(key)), conflict)
    await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})


@pytest.mark.parametrize(
    "value",
    ["k" * 256, "ké".encode(), b"\xff\xfe", "", "with space", "tab\there"],
    ids=["256-chars", "utf8", "latin1", "empty", "space", "tab"],
)
async def test_a_malformed_key_is_422_naming_the_header(client: Any, value: str | bytes) -> None:
    tenant_id = unique_id("idbad")
    for method, path, payload in [
        ("POST", "/v1/tenants", body(tenant_id)),
        ("DELETE", f"/v1/tenants/{tenant_id}", None),
        ("POST", f"/v1/tenants/{tenant_id}/retry", None),
    ]:
        response = await client.request(method, path, json=payload, headers={"Idempotency-Key": value})
        assert response.status_code == 422, (method, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"], problem
        assert "Idempotency-Key" in problem["detail"]
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404


async def test_the_longest_key_is_accepted(client: Any) -> None:
    tenant_id = unique_id("idlong")
    key = "".join(chr(c) for c in range(0x21, 0x7F)) * 3  # every visible ASCII character
    key = key[:255]
    first = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert first.status_code == 202, first.text
    assert_replay_of(await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key)), first)
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}")


@pytest.mark.parametrize(
    "bad",
    [
        {"tier": "basic"},  # refused by the body schema, before the handler
        {"tier": "gold", "display_name": "x"},  # refused by the use case (unknown tier)
    ],
    ids=["schema", "unknown-tier"],
)
async def test_a_422_does_not_use_up_the_key(client: Any, bad: dict[str, str]) -> None:
    tenant_id = unique_id("idfix")
    key = new_key()
    rejected = await client.post("/v1/tenants", json={"tenant_id": tenant_id, **bad}, headers=keyed(key))
    assert rejected.status_code == 422, rejected.text
    fixed = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert fixed.status_code == 202, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}")


@pytest.mark.parametrize(
    ("error", "status"),
    [(RegistryUnavailable("the tenant registry is unavailable: test"), 503), (RuntimeError("boom"), 500)],
    ids=["503", "500"],
)
async def test_a_server_error_does_not_use_up_the_key(
    client: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    """A request that failed on the server stored nothing: the client's retry with the same key
    runs again (rather than getting the error replayed for 24 hours)."""
    c = container(client)
    onboard = c.onboard
    failures = [error]

    async def flaky(spec: Any, *secrets: Any) -> Any:
        if failures:
            raise failures.pop()
        return await onboard(spec, *secrets)

    monkeypatch.setattr(c, "onboard", flaky)
    tenant_id = unique_id("id5xx")
    key = new_key()
    failed = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert failed.status_code == status, failed.text
    again = await client.post("/v1/tenants", json=body(tenant_id), headers=keyed(key))
    assert again.status_code == 202, again.text
    assert "idempotent-replayed" not in again.headers
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}")


def test_which_answers_are_stored() -> None:
    stored = [s for s in (200, 201, 202, 400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503) if is_stored(s)]
    assert stored == [200, 201, 202, 400, 404, 409, 413]


async def test_a_401_never_reaches_the_store(client: Any) -> None:
    key = new_key()
    response = await client.post("/v1/tenants", json=body(unique_id("idauth")), headers={"Authorization": "Bearer wrong", **keyed(key)})
    assert response.status_code == 401
    assert stored_entry(client, key) is None
    assert API_KEY not in response.text


# --- identity-provider secrets in the fingerprint ----------------------------------------------

SECRET = "oidc-s3cret-" + "7" * 20


def with_secret(tenant_id: str, secret: str = SECRET) -> dict[str, Any]:
    return body(
        tenant_id,
        "premium",
        identity_providers={
            "corp-oidc": {
                "type": "OIDC",
                "issuer": "https://login.corp.example",
                "client_id": "corp-client",
                "client_secret": secret,
                "scopes": ["openid", "email"],
            }
        },
    )


def guessed_fingerprint(method: str, path: str, payload: dict[str, Any], secret_as: Callable[[str], str]) -> str:
    """The fingerprint as someone who reads the registry could compute it for a guess of the
    secret: SHA-256 over method, path and canonical JSON, the secret put in as ``secret_as`` makes it."""

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: secret_as(v) if k == "client_secret" else swap(v) for k, v in value.items()}
        return value

    canonical = json.dumps(swap(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@contextlib.asynccontextmanager
async def one_registry(postgres: str | None, tmp: Path) -> AsyncIterator[str]:
    """A migrated registry for several apps (replicas, restarts) to share."""
    async with contextlib.AsyncExitStack() as stack:
        url = (
            f"sqlite+aiosqlite:///{tmp / 'shared.db'}"
            if postgres is None
            else await stack.enter_async_context(throwaway_database(postgres))
        )
        await upgrade(url)
        yield url


@contextlib.asynccontextmanager
async def replica(tmp: Path, endpoint: str, url: str, **overrides: Any) -> AsyncIterator[Any]:
    async with AsyncTestClient(make_app(tmp, endpoint, url, worker_enabled=False, **overrides)) as c:
        c.headers.update(AUTH)
        yield c


async def test_a_request_with_a_secret_replays_on_another_replica_and_after_a_restart(
    postgres_server: str | None, tmp_path: Path, emulator_endpoint: str
) -> None:
    tenant_id, key = unique_id("idsec"), new_key()
    async with one_registry(postgres_server, tmp_path) as url:
        async with replica(tmp_path, emulator_endpoint, url) as a, replica(tmp_path, emulator_endpoint, url) as b:
            first = await a.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key))
            assert first.status_code == 202, first.text
            assert_replay_of(await b.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key)), first)
            other = await b.post("/v1/tenants", json=with_secret(tenant_id, SECRET + "x"), headers=keyed(key))
            assert other.status_code == 422, other.text
            assert other.json()["type"] == IDEMPOTENCY_PROBLEMS + "mismatch"
            assert SECRET not in other.text
        async with replica(tmp_path, emulator_endpoint, url) as restarted:
            assert_replay_of(await restarted.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key)), first)


async def test_the_stored_fingerprint_cannot_be_recomputed_from_a_guessed_secret(client: Any) -> None:
    plain_id, plain_key = unique_id("idfp"), new_key()
    assert (await client.post("/v1/tenants", json=body(plain_id), headers=keyed(plain_key))).status_code == 202
    # The guess's scheme is the service's: without a secret, it gives the stored fingerprint.
    assert stored_entry(client, plain_key).fingerprint == guessed_fingerprint("POST", "/v1/tenants", body(plain_id), str)

    tenant_id, key = unique_id("idfp"), new_key()
    payload = with_secret(tenant_id)
    assert (await client.post("/v1/tenants", json=payload, headers=keyed(key))).status_code == 202
    entry = stored_entry(client, key)
    assert SECRET not in repr(tuple(entry))
    for guess in (str, lambda s: hashlib.sha256(s.encode()).hexdigest(), lambda s: "sha256:" + hashlib.sha256(s.encode()).hexdigest()):
        assert entry.fingerprint != guessed_fingerprint("POST", "/v1/tenants", payload, guess)
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}")


async def test_a_configured_key_stays_out_of_the_registry_and_changing_it_makes_a_replay_422(
    postgres_server: str | None, tmp_path: Path, emulator_endpoint: str
) -> None:
    configured = {"idempotency_hmac_key": "k" * 40}
    tenant_id, key = unique_id("idcfg"), new_key()
    async with one_registry(postgres_server, tmp_path) as url:
        async with replica(tmp_path, emulator_endpoint, url, **configured) as a, replica(tmp_path, emulator_endpoint, url, **configured) as b:
            first = await a.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key))
            assert first.status_code == 202, first.text
            assert_replay_of(await b.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key)), first)

            async def stored_keys() -> list[Any]:
                async with container(a).engine.connect() as conn:
                    return list(await conn.execute(text("SELECT name FROM server_keys")))

            assert in_app(a, stored_keys) == []
        async with replica(tmp_path, emulator_endpoint, url, idempotency_hmac_key="n" * 40) as rotated:
            again = await rotated.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key))
            assert again.status_code == 422 and again.json()["type"] == IDEMPOTENCY_PROBLEMS + "mismatch"
            assert "k" * 40 not in again.text and "n" * 40 not in again.text


async def test_fingerprints_of_secrets_never_run_scrypt_on_the_event_loop(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("scrypt ran on the event loop")

    monkeypatch.setattr(hashlib, "scrypt", refuse)
    tenant_id, key = unique_id("idloop"), new_key()
    first = await client.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key))
    assert first.status_code == 202, first.text
    assert_replay_of(await client.post("/v1/tenants", json=with_secret(tenant_id), headers=keyed(key)), first)
    await wait_status(client, tenant_id, {"active", "failed"})
    await client.delete(f"/v1/tenants/{tenant_id}")
