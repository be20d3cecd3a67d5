"""Fast reads (issue 7): GET /v1/tenants/{id} on PostgreSQL against a trivial route of the same app.

A fresh PostgreSQL database (dropped afterwards), `tenantctl db upgrade`, 1,000 tenants seeded
straight into the registry, then `tenantctl serve` as a subprocess (API + worker, INFO logs as in
production, to a file) with an emulator subprocess for its start-up check (reads make no AWS
call). The load comes from bench/_load.py in a process of its own: 64 clients, each on its own
keep-alive connection, requests back to back, with the bootstrap API key.

The trivial route is GET /v1/tiers: authenticated by the same middleware stack (request id,
access log, header limit, auth, rate limit) and answered from memory, so the difference between
the two is the tenant read itself: one registry round trip and the serialization of a tenant.
The per-credential rate limit is raised for the run (one key sends everything); its middleware
still runs. Rounds alternate the two routes (trivial, tenant, trivial, tenant) after a warm-up,
and each route's figures add its rounds up.

    .venv/bin/python bench/fast_reads.py [--seconds 5] [--rounds 2] [--concurrency 64] [--tenants 1000]

Target: tenant reads reach >= 0.5x the trivial route's requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import emulator, machine, pg_database, seed, serve

from adapters.registry.migrate import upgrade

LOAD = str(Path(__file__).resolve().parent / "_load.py")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(base: str, seconds: float, concurrency: int, paths: list[str], pid: int) -> dict[str, float]:
    before = cpu_s(pid)
    out = subprocess.run(
        [sys.executable, LOAD, base, str(seconds), str(concurrency), *paths], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout)
    if result["errors"]:
        raise SystemExit(f"non-200 answers during the run: {result['errors']}")
    result["cpu_ms"] = (cpu_s(pid) - before) * 1000 / result["requests"]
    return result


def combine(runs: list[dict[str, float]]) -> dict[str, float]:
    total = sum(r["requests"] for r in runs)
    return {
        "requests": total,
        "rps": sum(r["rps"] for r in runs) / len(runs),
        # Each round's percentiles, weighted by its requests (the rounds are of equal length).
        "p50_ms": sum(r["p50_ms"] * r["requests"] for r in runs) / total,
        "p99_ms": max(r["p99_ms"] for r in runs),
        "cpu_ms": sum(r["cpu_ms"] * r["requests"] for r in runs) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and route")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    with pg_database("reads") as url, emulator() as aws:
        asyncio.run(upgrade(url))
        asyncio.run(seed(url, args.tenants))
        ids = [f"/v1/tenants/t{i:07d}" for i in range(args.tenants)]
        # One key sends every request: its rate limit must not be what is measured.
        with serve(url, aws.url, TENANTS_RATE_LIMIT_PER_S="1000000", TENANTS_RATE_LIMIT_BURST="1000000") as server:
            base, pid = server.url, server.pid
            load(base, 2, args.concurrency, ["/v1/tiers"], pid)  # warm-up: connections, pool, caches
            load(base, 2, args.concurrency, ids, pid)
            trivial, reads = [], []
            for _ in range(args.rounds):
                trivial.append(load(base, args.seconds, args.concurrency, ["/v1/tiers"], pid))
                reads.append(load(base, args.seconds, args.concurrency, ids, pid))
    t, r = combine(trivial), combine(reads)
    c = args.concurrency
    for name, x in (("GET /v1/tiers (trivial, authenticated)", t), (f"GET /v1/tenants/{{id}} (PostgreSQL, {args.tenants} tenants)", r)):
        print(
            f"{name}, {c} clients: {x['rps']:.0f} req/s, p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms, "
            f"server CPU {x['cpu_ms']:.2f} ms/request ({x['requests']} requests)"
        )
    # The server's CPU per request is what bounds its requests/s when it has a core to itself; on a
    # busy machine requests/s also depend on what else runs (load average above).
    print(f"fast reads: server CPU per request, trivial / tenant read = {t['cpu_ms'] / r['cpu_ms']:.2f}x")
    ratio = r["rps"] / t["rps"]
    print(f"fast reads: tenant reads / trivial route = {ratio:.2f}x requests/s (target >= 0.50x): {'PASS' if ratio >= 0.5 else 'MISS'}")


if __name__ == "__main__":
    main()
