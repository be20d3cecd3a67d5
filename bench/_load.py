"""A closed-loop HTTP load generator, run as its own process so that it does not share the
server's event loop (and, on 2 cores, competes with the server only as a separate process would).

    python bench/_load.py BASE_URL SECONDS CONCURRENCY PATH [PATH ...]

CONCURRENCY clients, each on its own keep-alive connection (aiohttp), send GET requests with the
benchmark's bearer key back to back for SECONDS, each to a PATH drawn at random from the list.
Prints one JSON object: requests, non-200 answers, requests/s, and p50/p99 latency in ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import aiohttp

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import KEY, pct


async def run(base: str, seconds: float, concurrency: int, paths: list[str]) -> dict[str, float]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {KEY}"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
        deadline = time.perf_counter() + seconds
        rng = random.Random(7)

        async def client() -> None:
            while (now := time.perf_counter()) < deadline:
                async with session.get(rng.choice(paths)) as response:
                    await response.read()
                    if response.status != 200:
                        errors[response.status] = errors.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - now)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,  # type: ignore[dict-item]
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
    }


if __name__ == "__main__":
    base, seconds, concurrency, *paths = sys.argv[1:]
    print(json.dumps(asyncio.run(run(base, float(seconds), int(concurrency), paths))))
