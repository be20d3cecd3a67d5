"""PostgreSQL unreachable mid-request: 503 with Retry-After, nothing half-written, and the service
recovers by itself when the database comes back (no restart). The outage is made by a TCP proxy
between the service and PostgreSQL that the test cuts and restores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from tests.helpers import API_KEY, identity_pools_named, pools_named, unique_id, wait_status
from tests.integration.databases import throwaway_database
from tests.integration.test_api import PREFIX, make_app
from tests.reliability.conftest import FIGURES

pytestmark = pytest.mark.crash


class TcpProxy:
    """127.0.0.1:<port> -> target on a thread of its own; ``cut()`` drops every connection and
    refuses new ones, ``restore()`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> TcpProxy:
        self._call(self._listen())
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._pipes -= {writer, up_writer}

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            with contextlib.suppress(Exception):
                pipe.transport.abort()
        self._pipes.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
async def outage_setup(tmp_path: Path, emulator_endpoint: str) -> AsyncIterator[tuple[Any, TcpProxy]]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("needs PostgreSQL: TEST_DATABASE_URL is not set (.ci/run sets it)")
    async with throwaway_database(server) as url:
        await upgrade(url)
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        app = make_app(tmp_path, emulator_endpoint, _through(url, proxy.port), lease_seconds=2)
        async with AsyncTestClient(app, timeout=60) as client:
            client.headers.update({"Authorization": f"Bearer {API_KEY}"})
            yield client, proxy
        proxy.close()


async def _recovers(client: Any, path: str, timeout: float = 15) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(path)
        if response.status_code != 503 or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_outage_answers_503_writes_nothing_and_recovers(outage_setup: tuple[Any, TcpProxy], emulator_endpoint: str) -> None:
    client, proxy = outage_setup
    first = unique_id("pg")
    created = await client.post("/v1/tenants", json={"tenant_id": first, "tier": "basic", "display_name": "A"}, headers={"Prefer": "wait=30"})
    assert created.status_code == 201 and created.json()["status"] == "active"

    proxy.cut()
    during = unique_id("pg")
    for method, path, body in (
        ("POST", "/v1/tenants", {"tenant_id": during, "tier": "basic", "display_name": "B"}),
        ("GET", f"/v1/tenants/{first}", None),
        ("GET", "/v1/tenants", None),
        ("DELETE", f"/v1/tenants/{first}", None),
    ):
        response = await client.request(method, path, json=body)
        assert response.status_code == 503, (method, path, response.text)
        assert response.headers["retry-after"]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert f":{proxy.port}" not in response.text and "asyncpg" not in response.text  # no DSN, no driver error
    ready = await client.get("/health/ready")
    assert ready.status_code == 503

    proxy.restore()
    again = await _recovers(client, f"/v1/tenants/{first}")
    assert again.status_code == 200 and again.json()["status"] == "active"  # the DELETE did not half-happen
    assert (await client.get(f"/v1/tenants/{during}")).status_code == 404  # nothing half-written
    assert (await client.get("/health/ready")).status_code == 200

    retried = await client.post("/v1/tenants", json={"tenant_id": during, "tier": "basic", "display_name": "B"})
    assert retried.status_code == 202
    assert (await wait_status(client, during, {"active", "failed"}))["status"] == "active"
    FIGURES["registry outages survived"] += 1


async def test_outage_mid_provisioning_resumes_without_duplicates(
    outage_setup: tuple[Any, TcpProxy], emulator_endpoint: str
) -> None:
    client, proxy = outage_setup
    tenant_id = unique_id("pgmid")
    assert (await client.post("/v1/tenants", json={"tenant_id": tenant_id, "tier": "premium", "display_name": "C"})).status_code == 202
    # Cut as soon as the first step is recorded, while the rest of the plan is running.
    for _ in range(200):
        if (await client.get(f"/v1/tenants/{tenant_id}")).json()["resources"]["user_pool_id"]:
            break
        await asyncio.sleep(0.01)
    proxy.cut()
    await asyncio.sleep(3)  # longer than the 2 s lease: the job must be taken over afterwards
    proxy.restore()
    await _recovers(client, f"/v1/tenants/{tenant_id}")
    tenant = await wait_status(client, tenant_id, {"active", "failed"}, timeout=60)
    assert tenant["status"] == "active", tenant
    assert len(pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}")) == 1
    assert len(identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}")) == 1
    FIGURES["registry outages survived"] += 1
