"""Time to onboard a premium tenant through the API, on the embedded emulator.

Runs the app in-process (Litestar's test client, SQLite registry) against the emulator over
real HTTP, onboards N premium tenants one after another with `Prefer: wait`, and prints the
median and p90 wall time per onboarding, plus teardown. Usage:

    .venv/bin/python bench/onboard_premium.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from litestar.testing import AsyncTestClient

from adapters.aws.emulator import EmulatorServer
from adapters.registry.migrate import upgrade
from service.app import create_app
from service.logs import configure_logging

KEY = "tpk_bench_" + "b" * 40


async def main(n: int) -> None:
    configure_logging("json", "WARNING")
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(port=0) as emulator:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(url)
        app = create_app(
            database_url=url,
            aws_endpoint_url=emulator.endpoint_url,
            bootstrap_api_key=KEY,
            resource_prefix="bench",
            poll_interval_s=0.05,
            var_dir=Path(tmp),
            log_level="WARNING",
        )
        onboard, teardown = [], []
        async with AsyncTestClient(app, timeout=120) as client:
            client.headers.update({"Authorization": f"Bearer {KEY}", "Prefer": "wait=60"})
            for _ in range(n):
                tenant_id = f"b-{uuid.uuid4().hex[:10]}"
                started = time.perf_counter()
                response = await client.post(
                    "/v1/tenants", json={"tenant_id": tenant_id, "tier": "premium", "display_name": "Bench"}
                )
                onboard.append(time.perf_counter() - started)
                assert response.status_code == 201 and response.json()["status"] == "active", response.text
                started = time.perf_counter()
                response = await client.delete(f"/v1/tenants/{tenant_id}")
                teardown.append(time.perf_counter() - started)
                assert response.json()["status"] == "deleted", response.text

    def fmt(values: list[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[max(0, int(round(0.9 * len(ordered))) - 1)]
        return f"median {statistics.median(values) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms"

    print(f"premium onboarding through the API, emulator, n={n}: {fmt(onboard)}")
    print(f"premium teardown through the API, emulator, n={n}: {fmt(teardown)}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
