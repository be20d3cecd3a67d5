"""Memory (issue 7): the RSS of `tenantctl serve` after 10 onboardings against its RSS after 1,000.

`tenantctl serve` (API + in-process worker, INFO logs to a file) on a fresh PostgreSQL database,
against an emulator subprocess with no added latency. Onboardings go through the API: POST
/v1/tenants with `Prefer: wait=60` (standard tier; 201 and `active` expected), then DELETE with
`Prefer: wait=60` (`deleted` expected), by CONCURRENCY clients at once. Each tenant is torn down
right after it is onboarded: the emulator, like AWS, caps identity pools and IAM roles at 1,000, so
an onboarding here is an onboard + delete cycle (and the registry keeps every tombstone, as in
production). The worker runs with TENANTS_WORKER_CONCURRENCY = CONCURRENCY.

RSS is VmRSS from /proc/<pid>/status, read after the service has been idle for SETTLE seconds
(the worker's polls go on meanwhile), after the first 10 and at a quarter, half and all of them.

    .venv/bin/python bench/memory.py [--onboardings 1000] [--concurrency 8]

Target: RSS after 1,000 <= 1.2x RSS after 10.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import KEY, emulator, machine, pg_database, rss_kib, serve

from adapters.registry.migrate import upgrade

TARGET = 1.2


async def onboard_cycles(base: str, ids: list[str], concurrency: int) -> float:
    """Onboard and tear down each tenant of ``ids``; returns the seconds it took."""
    headers = {"Authorization": f"Bearer {KEY}", "Prefer": "wait=60"}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for tenant_id in ids:
        queue.put_nowait(tenant_id)
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as session:

        async def client() -> None:
            while not queue.empty():
                tenant_id = queue.get_nowait()
                body = {"tenant_id": tenant_id, "tier": "standard", "display_name": f"Memory {tenant_id}"}
                async with session.post("/v1/tenants", json=body) as response:
                    answer = await response.json()
                    if response.status != 201 or answer["status"] != "active":
                        raise SystemExit(f"onboarding {tenant_id}: {response.status} {answer}")
                async with session.delete(f"/v1/tenants/{tenant_id}") as response:
                    answer = await response.json()
                    if response.status != 200 or answer["status"] != "deleted":
                        raise SystemExit(f"teardown of {tenant_id}: {response.status} {answer}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started


def settled_rss(pid: int, settle_s: float) -> int:
    time.sleep(settle_s)
    return rss_kib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onboardings", type=int, default=1000)
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before reading RSS")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    ids = [f"mem-{i:05d}" for i in range(args.onboardings)]
    with pg_database("memory") as url, emulator() as aws:
        asyncio.run(upgrade(url))
        env = {"TENANTS_WORKER_CONCURRENCY": str(args.concurrency), "TENANTS_POLL_INTERVAL_S": "0.2"}
        with serve(url, aws.url, **env) as server:
            at_start = settled_rss(server.pid, 0)
            took = asyncio.run(onboard_cycles(server.url, ids[: args.first], args.concurrency))
            first = settled_rss(server.pid, args.settle)
            print(f"RSS of tenantctl serve: {at_start / 1024:.1f} MiB at start, {first / 1024:.1f} MiB after {args.first} onboardings ({took:.1f} s)")
            marks = sorted({args.onboardings // 4, args.onboardings // 2, args.onboardings} - {0})
            done = args.first
            for mark in marks:
                if mark <= done:
                    continue
                took = asyncio.run(onboard_cycles(server.url, ids[done:mark], args.concurrency))
                rss = settled_rss(server.pid, args.settle)
                rate = (mark - done) / took
                print(f"RSS after {mark} onboardings: {rss / 1024:.1f} MiB ({rate:.1f} onboard+delete cycles/s, {args.concurrency} at once)")
                done = mark
            last = rss
    ratio = last / first
    verdict = "PASS" if ratio <= TARGET else "MISS"
    print(f"memory: RSS after {args.onboardings} / after {args.first} onboardings = {ratio:.2f}x (target <= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
