"""Idempotent creates with secrets (issue 12): do onboardings that carry identity-provider secrets
and an Idempotency-Key slow down everyone else's reads?

A fresh PostgreSQL database (dropped afterwards), `tenantctl db upgrade`, 200 tenants seeded
straight into the registry, then `tenantctl serve` as a subprocess (INFO logs to a file, as in
production) with an emulator subprocess. The in-process worker is off (`--worker` turns it on):
what is measured is the API's request path, where the Idempotency-Key fingerprint is computed;
provisioning the created tenants would add its own AWS calls to the same event loop (a
`tenantctl worker` can run them elsewhere).

The load comes from processes of their own (this file with `--reads` / `--creates`, aiohttp):

- reads: GET /v1/tenants/{id} of a random seeded tenant, open loop at `--rate` requests/s (each
  sent on schedule whether or not earlier ones answered), so a stalled event loop shows as latency;
- creates (busy phases only): `--creators` clients, each on its own connection, each sending
  POST /v1/tenants of a new premium tenant with an OIDC and a Google identity provider (two
  `client_secret`s) and a new Idempotency-Key, then waiting `--pause` s before its next one: 20
  onboardings in flight at once, at a rate the service's other work leaves room for (without the
  pause the creates alone keep a shared 2-core machine busy, whatever the fingerprint costs).

Rounds alternate reads alone and reads during the creates (`--seconds` each; the creates start a
second before the reads and end a second after). Printed: the medians over rounds of each phase's
read p50 and p99, the creates made, the server's CPU per read and per create, and the p99 ratio.

    .venv/bin/python bench/idempotent_secrets.py [--seconds 8] [--rounds 3] [--rate 100] [--creators 20] [--pause 1] [--worker]

Target: read p99 during the creates <= 1.2x read p99 without them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import KEY, emulator, machine, pct, pg_database, seed, serve

TARGET = 1.2
TENANTS = 200


def create_body(tenant_id: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "tier": "premium",
        "display_name": f"Bench {tenant_id}",
        "admin_email": f"admin@{tenant_id}.example.com",
        "identity_providers": {
            "corp-oidc": {
                "type": "OIDC",
                "issuer": "https://login.example.com",
                "client_id": "bench-client",
                "client_secret": "oidc-" + uuid.uuid4().hex,
                "scopes": ["openid", "email"],
            },
            "Google": {
                "type": "Google",
                "client_id": "bench.apps.googleusercontent.com",
                "client_secret": "google-" + uuid.uuid4().hex,
                "scopes": ["openid", "email"],
            },
        },
    }


async def run_reads(base: str, seconds: float, rate: float, tenants: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[int, int] = {}
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, connector=connector, headers={"Authorization": f"Bearer {KEY}"}) as session:

        async def read(path: str) -> None:
            started = time.perf_counter()
            async with session.get(path) as response:
                await response.read()
                if response.status != 200:
                    errors[response.status] = errors.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

        pending = []
        deadline = time.perf_counter() + seconds
        interval, next_at = 1 / rate, time.perf_counter()
        while next_at < deadline:
            pending.append(asyncio.create_task(read(f"/v1/tenants/t{rng.randrange(tenants):07d}")))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*pending)
    return {"reads": len(latencies), "errors": errors, "p50_ms": pct(latencies, 0.50) * 1000, "p99_ms": pct(latencies, 0.99) * 1000}


async def run_creates(base: str, seconds: float, creators: int, pause_s: float) -> dict[str, Any]:
    import aiohttp

    answers: dict[int, int] = {}
    refused: list[str] = []
    connector = aiohttp.TCPConnector(limit=creators)
    async with aiohttp.ClientSession(base, connector=connector, headers={"Authorization": f"Bearer {KEY}"}) as session:
        deadline = time.perf_counter() + seconds

        async def creator() -> None:
            while time.perf_counter() < deadline:
                tenant_id = "s" + uuid.uuid4().hex[:12]
                key = {"Idempotency-Key": str(uuid.uuid4())}
                async with session.post("/v1/tenants", json=create_body(tenant_id), headers=key) as response:
                    text = await response.text()
                    answers[response.status] = answers.get(response.status, 0) + 1
                    if response.status != 202:
                        refused.append(text[:300])
                await asyncio.sleep(pause_s)

        await asyncio.gather(*(creator() for _ in range(creators)))
    return {"answers": answers, "refused": refused[:1]}


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"a load process failed ({process.returncode})")
    answer: dict[str, Any] = json.loads(out)
    return answer


def phase(base: str, pid: int, seconds: float, *, rate: float, creators: int, aws_pid: int, pause_s: float) -> dict[str, Any]:
    """Reads for ``seconds``; with ``creators``, the creates start a second before the reads and end
    a second after them, so that they run during every read."""
    before, aws_before = cpu_s(pid), cpu_s(aws_pid)
    creates = spawn("--creates", base, seconds + 2, creators, pause_s) if creators else None
    if creates:
        time.sleep(1)
    reads = result_of(spawn("--reads", base, seconds, rate, TENANTS))
    if reads["errors"]:
        raise SystemExit(f"non-200 answers to reads: {reads['errors']}")
    reads["cpu_s"] = cpu_s(pid) - before
    reads["creates"] = 0
    if creates:
        made = result_of(creates)
        reads["cpu_s"] = cpu_s(pid) - before
        if set(made["answers"]) != {"202"}:
            raise SystemExit(f"creates not all 202: {made['answers']}; the first other answer: {made['refused']}")
        reads["creates"] = made["answers"]["202"]
    reads["aws_cpu_s"] = cpu_s(aws_pid) - aws_before
    return reads


def main() -> None:
    if sys.argv[1:2] == ["--reads"]:
        base, seconds, rate, tenants = sys.argv[2:6]
        print(json.dumps(asyncio.run(run_reads(base, float(seconds), float(rate), int(tenants)))))
        return
    if sys.argv[1:2] == ["--creates"]:
        base, seconds, creators, pause_s = sys.argv[2:6]
        print(json.dumps(asyncio.run(run_creates(base, float(seconds), int(creators), float(pause_s)))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per round and phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="reads per second")
    parser.add_argument("--creators", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds each creator waits between its creates")
    parser.add_argument("--worker", action="store_true", help="run the in-process worker too")
    args = parser.parse_args()

    from adapters.registry.migrate import upgrade

    print(f"machine: {machine()}")
    with pg_database("secrets") as url, emulator() as aws:
        asyncio.run(upgrade(url))
        asyncio.run(seed(url, TENANTS))
        env = {
            "TENANTS_RATE_LIMIT_PER_S": "1000000",  # one key sends everything
            "TENANTS_RATE_LIMIT_BURST": "1000000",
            "TENANTS_WORKER_ENABLED": "true" if args.worker else "false",
        }
        with serve(url, aws.url, **env) as server:
            run = functools.partial(phase, server.url, server.pid, rate=args.rate, aws_pid=aws.pid, pause_s=args.pause)
            run(3, creators=2)  # warm-up: connections, pool, caches, the first creates
            quiet, busy = [], []
            for _ in range(args.rounds):
                quiet.append(run(args.seconds, creators=0))
                busy.append(run(args.seconds, creators=args.creators))
    busy_s = args.seconds + 2
    for name, rounds in (("reads alone", quiet), (f"reads during {args.creators} concurrent creates", busy)):
        p99s = ", ".join(f"{r['p99_ms']:.1f}" for r in rounds)
        print(
            f"GET /v1/tenants/{{id}} at {args.rate:.0f}/s, {name}: p50 {median(r['p50_ms'] for r in rounds):.1f} ms, "
            f"p99 {median(r['p99_ms'] for r in rounds):.1f} ms (median of rounds: {p99s}; {sum(r['reads'] for r in rounds)} reads)"
        )
    made = sum(r["creates"] for r in busy)
    print(
        f"creates with 2 identity-provider secrets and an Idempotency-Key: {made} in {args.rounds} x {busy_s:.0f} s "
        f"({made / busy_s / args.rounds:.1f}/s)"
    )
    per_read = sum(r["cpu_s"] for r in quiet) / sum(r["reads"] for r in quiet)
    per_create = sum(r["cpu_s"] - per_read * r["reads"] for r in busy) / made
    print(
        f"server CPU: {per_read * 1000:.2f} ms per read, {per_create * 1000:.1f} ms per create; "
        f"{sum(r['cpu_s'] for r in busy) / busy_s / args.rounds * 100:.0f} % of a core during the creates "
        f"(the emulator: {sum(r['aws_cpu_s'] for r in busy) / busy_s / args.rounds * 100:.0f} %)"
    )
    ratio = median(r["p99_ms"] for r in busy) / median(r["p99_ms"] for r in quiet)
    print(f"idempotent secrets: read p99 during creates / alone = {ratio:.2f}x (target <= {TARGET}x): {'PASS' if ratio <= TARGET else 'MISS'}")

if __name__ == "__main__":
    main()
