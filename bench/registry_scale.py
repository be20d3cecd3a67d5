"""Registry at scale (issue 7): 100,000 tenants; the first page of GET /v1/tenants against the last,
and lookups by id at 1,000 tenants against 100,000.

PostgreSQL (a fresh database, dropped afterwards) and SQLite (a temporary file), each migrated with
Alembic and seeded in bulk (multi-row INSERTs of 5,000; tenants t0000000..., 80 % active, the rest
failed or deleted; a third premium). Measured:

- through the repository layer (the ListTenants / GetTenant use cases on SqlUnitOfWorkFactory, one
  call at a time): PostgreSQL and SQLite;
- through HTTP (`tenantctl serve` as a subprocess, one client, keep-alive, bootstrap key):
  PostgreSQL.

Pages hold 100 tenants, unfiltered, filtered by status=active and by tier=premium. The last page's
cursor is found by walking every page once through the repository (which also checks that the
walk visits every matching tenant once, in order). Each figure is the median of N calls after a
warm-up. EXPLAIN of each page query is printed: an index scan, no sort, no sequential scan.

    .venv/bin/python bench/registry_scale.py [--tenants 100000] [--calls 200] [--no-sqlite]

Targets: last page <= 1.5x the first; a lookup at 100k tenants <= 1.5x one at 1k (flat).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import KEY, emulator, machine, pg_database, seed, serve

from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from adapters.registry.sql import SqlUnitOfWorkFactory
from domain.usecases import GetTenant, ListTenants
from service.cursors import encode_cursor

PAGE = 100
FILTERS: dict[str, dict[str, str | None]] = {
    "unfiltered": {"status": None, "tier": None},
    "status=active": {"status": "active", "tier": None},
    "tier=premium": {"status": None, "tier": "premium"},
}
LOOKUP_TARGET = 1.5
PAGE_TARGET = 1.5


def status_of(i: int) -> str:
    return "active" if i % 10 < 8 else ("failed" if i % 10 == 8 else "deleted")


def tier_of(i: int) -> str:
    return "premium" if i % 3 == 0 else "standard"


async def median_ms(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    for _ in range(max(10, calls // 10)):
        await call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target}x): {'PASS' if ratio <= target else 'MISS'}"


async def last_cursors(list_tenants: ListTenants, total: int) -> dict[str, str | None]:
    """Walk every page of each listing once, checking that it visits every matching tenant once and
    in order; return the cursor of its last full page (its last 100 tenants)."""
    cursors: dict[str, str | None] = {}
    for name, f in FILTERS.items():
        expected = [
            f"t{i:07d}"
            for i in range(total)
            if (f["status"] is None or status_of(i) == f["status"]) and (f["tier"] is None or tier_of(i) == f["tier"])
        ]
        seen: list[str] = []
        after = None
        while True:
            page = await list_tenants(limit=PAGE, after=after, **f)
            seen += [t.tenant_id for t in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        if seen != expected:
            raise SystemExit(f"{name}: the walk saw {len(seen)} tenants, expected {len(expected)} in order")
        # What a client holds after the page before the last full one: the id before the last 100.
        cursors[name] = expected[-PAGE - 1] if len(expected) > PAGE else None
    return cursors


async def explain(engine: Any, cursors: dict[str, str | None]) -> list[str]:
    from sqlalchemy import select, text

    from adapters.registry.tables import tenants

    lines = []
    async with engine.connect() as conn:
        for name, f in FILTERS.items():
            for label, after in (("first", None), ("last", cursors[name])):
                stmt = select(tenants)
                if f["status"]:
                    stmt = stmt.where(tenants.c.status == f["status"])
                if f["tier"]:
                    stmt = stmt.where(tenants.c.tier == f["tier"])
                if after:
                    stmt = stmt.where(tenants.c.tenant_id > after)
                stmt = stmt.order_by(tenants.c.tenant_id).limit(PAGE + 1)
                compiled = stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
                prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
                rows = (await conn.execute(text(prefix + str(compiled)))).all()
                plan = " / ".join(str(r[0] if engine.dialect.name == "postgresql" else r[-1]).strip() for r in rows)
                # SQLite's "SCAN tenants USING INDEX" reads in index order and stops at the LIMIT: fine.
                bad = any(word in plan for word in ("Seq Scan", "Sort", "TEMP B-TREE")) or plan.rstrip().endswith("SCAN tenants")
                lines.append(f"    {name:14} {label:5} {'SORT/SCAN! ' if bad else ''}{plan}")
    return lines


async def repository(url: str, total: int, calls: int, label: str) -> dict[str, str | None]:
    """Seeds the registry at ``url`` (1,000, then ``total`` tenants), prints the figures, and
    returns the cursor of each listing's last page."""
    engine = make_engine(url)
    try:
        factory = SqlUnitOfWorkFactory(engine)
        get, list_tenants = GetTenant(factory), ListTenants(factory)
        rng = random.Random(1)
        small = 1000
        await seed(url, small, tier_of=tier_of, status_of=status_of)
        at_1k = await median_ms(lambda: get(f"t{rng.randrange(small):07d}"), calls)
        seeded = await seed(url, total - small, start=small, tier_of=tier_of, status_of=status_of)
        print(f"  {label}: {total} tenants inserted in bulk in {seeded:.1f} s (+ the first {small})")
        at_full = await median_ms(lambda: get(f"t{rng.randrange(total):07d}"), calls)
        print(f"  {label} repository, lookup by id: {at_1k:.3f} ms at {small}, {at_full:.3f} ms at {total}: {verdict(at_full / at_1k, LOOKUP_TARGET)}")
        started = time.perf_counter()
        cursors = await last_cursors(list_tenants, total)
        print(f"  {label}: every page of the 3 listings walked and checked in {time.perf_counter() - started:.1f} s")
        for name, f in FILTERS.items():
            first = await median_ms(lambda f=f: list_tenants(limit=PAGE, after=None, **f), calls)
            last = await median_ms(lambda f=f, n=name: list_tenants(limit=PAGE, after=cursors[n], **f), calls)
            print(f"  {label} repository, {name:14} page of {PAGE}: first {first:.2f} ms, last {last:.2f} ms: {verdict(last / first, PAGE_TARGET)}")
        print(f"  {label} query plans (EXPLAIN):")
        print("\n".join(await explain(engine, cursors)))
    finally:
        await engine.dispose()
    return cursors


async def over_http(base: str, total: int, calls: int, cursors: dict[str, str | None]) -> None:
    rng = random.Random(2)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(base, headers=headers) as session:

        async def get(path: str, params: dict[str, str] | None = None) -> None:
            async with session.get(path, params=params) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"GET {path} {params}: {response.status}")

        lookup = await median_ms(lambda: get(f"/v1/tenants/t{rng.randrange(total):07d}"), calls)
        lookup_1k = await median_ms(lambda: get(f"/v1/tenants/t{rng.randrange(1000):07d}"), calls)
        print(f"  HTTP GET /v1/tenants/{{id}}: {lookup_1k:.2f} ms for the first 1,000 ids, {lookup:.2f} ms over all {total}: {verdict(lookup / lookup_1k, LOOKUP_TARGET)}")
        for name, f in FILTERS.items():
            params = {k: v for k, v in f.items() if v} | {"limit": str(PAGE)}
            after = cursors[name]
            last_params = params | ({"cursor": encode_cursor("after", after)} if after else {})
            first = await median_ms(lambda p=params: get("/v1/tenants", p), calls)
            last = await median_ms(lambda p=last_params: get("/v1/tenants", p), calls)
            print(f"  HTTP GET /v1/tenants {name:14} limit={PAGE}: first {first:.2f} ms, last {last:.2f} ms: {verdict(last / first, PAGE_TARGET)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("PostgreSQL:")
    with pg_database("scale") as url, emulator() as aws:
        asyncio.run(upgrade(url))
        cursors = asyncio.run(repository(url, args.tenants, args.calls, "PostgreSQL"))
        with serve(url, aws.url, TENANTS_RATE_LIMIT_PER_S="1000000", TENANTS_RATE_LIMIT_BURST="1000000") as server:
            asyncio.run(over_http(server.url, args.tenants, args.calls, cursors))
    if not args.no_sqlite:
        print("SQLite:")
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'registry.db'}"
            asyncio.run(upgrade(url))
            asyncio.run(repository(url, args.tenants, args.calls, "SQLite"))


if __name__ == "__main__":
    main()
