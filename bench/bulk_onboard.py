"""Quota-aware bulk onboarding: N tenants (premium by default, --tier) submitted at once against Cognito's quotas.

The emulator runs with ``--quotas cognito`` (CreateUserPool 15/s per account, CreateGroup and
CreateUserPoolDomain 15/s and 5/s per pool, ...) and ``--latency-ms L``; ``tenantctl serve``
(a throwaway PostgreSQL database on 127.0.0.1:5432 as the other benchmarks, ``$BENCH_PG_HOST``
etc. or ``--postgres``; ``--sqlite`` for SQLite; worker concurrency above N so every tenant is in
flight) gets N ``POST /v1/tenants`` at once and the benchmark waits until every tenant is
``active`` or ``failed``. Prints:

- wall time from the first POST to the last tenant settled;
- the sustained CreateUserPool rate: admitted calls over the time between the first and the last
  admission (the emulator's counters), against 15/s (target >= 90%);
- throttles the emulator served (target: few; each one is retried, never a failed step), and
  the attempts the service saw throttled;
- failed steps (target 0) and tenants active.

Exits non-zero only on a crash, never on a missed target. Usage:

    .venv/bin/python bench/bulk_onboard.py [--tenants 300] [--latency-ms 30] [--postgres SERVER_URL | --sqlite]

SQLite takes one writer at a time: with hundreds of jobs recording steps at once it is what gets
measured (and it may refuse writes with "database is locked").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

QUOTA = 15.0  # CreateUserPool, requests/s per account (UserPoolUpdate)
TARGET_SHARE = 0.90


def _metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _submit(client: httpx.AsyncClient, tenant_id: str, tier: str) -> None:
    response = await client.post("/v1/tenants", json={"tenant_id": tenant_id, "tier": tier, "display_name": "Bulk"})
    if response.status_code not in (201, 202):
        raise RuntimeError(f"POST {tenant_id}: {response.status_code} {response.text[:300]}")


async def _statuses(client: httpx.AsyncClient, prefix: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    cursor = None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/tenants", params=params)
        response.raise_for_status()
        body = response.json()
        for item in body["items"]:
            if item["tenant_id"].startswith(prefix):
                statuses[item["tenant_id"]] = item["status"]
        cursor = body.get("next_cursor")
        if not cursor:
            return statuses


async def run(args: argparse.Namespace) -> None:
    prefix = f"bk{uuid.uuid4().hex[:6]}-"
    tenants = [f"{prefix}{i:04d}" for i in range(args.tenants)]
    env = {
        "TENANTS_WORKER_CONCURRENCY": str(args.tenants + 20),
        # The API's own per-credential limit would turn the burst of POSTs away: not measured here.
        "TENANTS_RATE_LIMIT_PER_S": "100000",
        "TENANTS_RATE_LIMIT_BURST": "100000",
        "TENANTS_LEASE_SECONDS": "120",
        "TENANTS_DB_POOL_SIZE": "40",
    }
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(_common.postgres_database(args.postgres)) if args.postgres else None
        emu = stack.enter_context(_common.emulator(latency_ms=args.latency_ms, quotas="cognito"))
        svc = stack.enter_context(_common.service(emu.url, env=env, database_url=database_url))
        limits = httpx.Limits(max_connections=args.tenants, max_keepalive_connections=args.tenants)
        async with httpx.AsyncClient(base_url=svc.url, headers=svc.headers, timeout=120, limits=limits) as client:
            started = time.perf_counter()
            await asyncio.gather(*(_submit(client, t, args.tier) for t in tenants))
            submitted = time.perf_counter() - started
            while True:
                statuses = await _statuses(client, prefix)
                settled = [s for s in statuses.values() if s in ("active", "failed")]
                if len(settled) == len(tenants):
                    break
                if time.perf_counter() - started > args.timeout_s:
                    print(f"gave up after {args.timeout_s:.0f} s: {len(settled)} of {len(tenants)} settled")
                    break
                await asyncio.sleep(0.5)
            wall = time.perf_counter() - started
            metrics = (await client.get("/metrics")).text
            errors: dict[str, int] = {}
            for tenant_id in [t for t, status in statuses.items() if status == "failed"]:
                error = (await client.get(f"/v1/tenants/{tenant_id}")).json().get("last_error") or {}
                key = f"{error.get('step')}: {error.get('code')}"
                errors[key] = errors.get(key, 0) + 1
        stats = _common.emulator_stats(emu.url)
        crashes = []
        if errors and svc.log_path is not None:
            # An unexpected error is recorded without its text (InternalError): the log has it.
            for line in svc.log_path.read_text(errors="replace").splitlines():
                if '"exception"' in line or '"level": "error"' in line or '"outcome": "error"' in line:
                    crashes.append(line[:600])

    ops: dict[str, dict[str, float]] = stats["operations"]  # type: ignore[assignment]
    # The least time the quotas allow: the busiest category's admitted calls at its rate.
    categories: list[dict[str, object]] = stats["categories"]  # type: ignore[assignment]
    quota_floor, busiest = 0.0, ""
    for category in categories:
        calls = sum(ops.get(op, {}).get("admitted", 0) for op in category["operations"])  # type: ignore[union-attr]
        if calls / float(category["rate"]) > quota_floor:  # type: ignore[arg-type]
            quota_floor, busiest = calls / float(category["rate"]), f"{category['name']}: {calls} calls at {category['rate']:.0f}/s"
    pools = ops.get("CreateUserPool", {})
    admitted = int(pools.get("admitted", 0))
    span = (pools.get("last_at") or 0) - (pools.get("first_at") or 0)
    rate = (admitted - 1) / span if admitted > 1 and span > 0 else 0.0
    active = sum(1 for s in statuses.values() if s == "active")
    failed_tenants = sum(1 for s in statuses.values() if s == "failed")
    failed_steps = _metric_sum(metrics, "tenants_step_duration_seconds_count", operation="provision", outcome="error")
    seen_throttled = _metric_sum(metrics, "tenants_aws_calls_total", outcome="throttled")
    retried = _metric_sum(metrics, "tenants_aws_calls_total", outcome="retried")
    served = {op: int(v.get("throttled", 0)) for op, v in ops.items() if v.get("throttled")}

    registry = "PostgreSQL" if args.postgres else "SQLite"
    print(f"bulk onboarding: {args.tenants} {args.tier} tenants at once, emulator --quotas cognito, latency {args.latency_ms:.0f} ms, {registry} registry")
    print(f"  submitted in {submitted:.1f} s; all settled after {wall:.1f} s (wall)")
    print(f"  the quotas' floor: {quota_floor:.1f} s ({busiest}); wall / floor: {wall / quota_floor:.2f}x" if quota_floor else "")
    print(f"  CreateUserPool: {admitted} admitted over {span:.1f} s")
    print("  " + _common.ratio_line("sustained CreateUserPool rate", rate, QUOTA * TARGET_SHARE, "/s", higher_is_better=True)
          + f"; {rate / QUOTA:.1%} of the {QUOTA:.0f}/s quota")
    print(f"  throttles served by the emulator: {sum(served.values())} {served or ''}")
    print(f"  attempts the service saw throttled: {seen_throttled:.0f}; botocore retries: {retried:.0f}")
    print(f"  failed steps: {failed_steps:.0f} (target 0); tenants active: {active}/{args.tenants}, failed: {failed_tenants}")
    if errors:
        print(f"  why they failed (step: code): {errors}")
        for line in crashes[:3]:
            print(f"    log: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--tier", default="premium", help="the tier of every tenant (premium: the most calls per tenant)")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    default_pg = "postgresql+asyncpg://{}@{}:{}/postgres".format(
        os.environ.get("BENCH_PG_USER", "postgres"),
        os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        os.environ.get("BENCH_PG_PORT", "5432"),
    )
    parser.add_argument(
        "--postgres",
        default=default_pg,
        help=f"the PostgreSQL server to create a throwaway registry on (default {default_pg}, from $BENCH_PG_*)",
    )
    parser.add_argument("--sqlite", action="store_true", help="a SQLite registry instead (one writer at a time)")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    if args.sqlite:
        args.postgres = None
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
