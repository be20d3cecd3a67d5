"""Lifecycle event delivery: outbox throughput and commit-to-receipt latency.

N events (``--events``, over ``--tenants`` tenants) are committed to the outbox for two loopback
webhook receivers (answering 200 at once), and ``--dispatchers`` dispatchers (EventDispatcher,
each with its own lease owner, in one process) deliver them. Prints, per registry (SQLite, then
PostgreSQL when a server answers on 127.0.0.1:5432):

- deliveries per second, from the first claim to the last delivery recorded;
- each delivery counted once (no row delivered twice; at least once, in order per tenant);
- latency of a single event, from the commit that wrote it to its receipt (in-process wake-up,
  not the poll interval), median over ``--single`` events written one at a time.

No target asserted (the service's load is a few events per tenant operation); exits non-zero only
on a crash or a lost/duplicated delivery. Usage:

    .venv/bin/python bench/event_outbox.py [--events 2000] [--tenants 200] [--dispatchers 2] [--single 50]
        [--poll-s 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import pg_database  # noqa: E402

from adapters.events.webhooks import WebhookPublisher  # noqa: E402
from adapters.registry.engine import make_engine  # noqa: E402
from adapters.registry.migrate import upgrade  # noqa: E402
from adapters.registry.outbox import OutboxStore, outbox_stats  # noqa: E402
from adapters.registry.sql import SqlUnitOfWorkFactory  # noqa: E402
from domain.lifecycle import PROVISIONING_STARTED, LifecycleEvent, RetryPolicy  # noqa: E402
from service.events import EventDispatcher  # noqa: E402
from service.logs import configure_logging  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402

SECRET = "whsec_YmVuY2gta2V5LTAxMjM0NTY3ODlhYmNk"  # whsec_ + base64(b"bench-key-0123456789abcd")


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def run(url: str, label: str, events: int, tenants: int, dispatchers: int, single: int, poll_s: float) -> bool:
    await upgrade(url)
    engine = make_engine(url)
    receiver = WebhookReceiver(SECRET).start()
    ok = True
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            hooks = [WebhookPublisher(f"{receiver.url}/{n}", SECRET, client) for n in ("a", "b")]
            publishers = {h.destination: h for h in hooks}
            running: list[EventDispatcher] = []
            uow = SqlUnitOfWorkFactory(engine, tuple(publishers), lambda _: [d.wake() for d in running])
            written = [
                LifecycleEvent(PROVISIONING_STARTED, f"t{i % tenants}", datetime.now(UTC)) for i in range(events)
            ]
            for start in range(0, events, 500):
                async with uow() as u:
                    for e in written[start : start + 500]:
                        await u.outbox.add(e)
                    await u.commit()
            store = OutboxStore(engine)
            policy = RetryPolicy()
            running.extend(
                EventDispatcher(store, publishers, Clock(), policy, batch_size=50, poll_interval_s=poll_s)
                for _ in range(dispatchers)
            )
            started = time.perf_counter()
            for d in running:
                d.start()
            while (await outbox_stats(engine)).pending:
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            got = Counter((r.path, r.event["id"]) for r in receiver.all() if r.status == 200)
            once = len(got) == 2 * events and set(got.values()) == {1}
            ok = ok and once
            print(
                f"[{label}] {2 * events} deliveries ({events} events x 2 webhooks, {dispatchers} dispatchers): "
                f"{2 * events / elapsed:.0f}/s, {elapsed:.2f} s; each delivered once: {once}"
            )

            latencies = []
            for i in range(single):
                before = len(receiver.all())
                t0 = time.perf_counter()
                async with uow() as u:
                    await u.outbox.add(LifecycleEvent(PROVISIONING_STARTED, f"s{i}", datetime.now(UTC)))
                    await u.commit()
                while len(receiver.all()) < before + 2:
                    await asyncio.sleep(0.001)
                latencies.append((time.perf_counter() - t0) * 1000)
            print(
                f"[{label}] commit -> receipt at both webhooks, one event at a time: median "
                f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms over {single} events "
                f"(poll interval {poll_s * 1000:.0f} ms: the commit wakes the dispatcher)"
            )
            for d in running:
                await d.stop()
    finally:
        receiver.stop()
        await engine.dispose()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--single", type=int, default=50)
    parser.add_argument("--poll-s", type=float, default=1.0, help="the dispatchers' poll interval")
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/registry.db"
        ok &= asyncio.run(run(url, "sqlite", args.events, args.tenants, args.dispatchers, args.single, args.poll_s))
    try:
        with pg_database("events") as url:
            ok &= asyncio.run(
                run(url, "postgresql", args.events, args.tenants, args.dispatchers, args.single, args.poll_s)
            )
    except Exception as exc:  # no PostgreSQL here: SQLite's figures stand alone
        print(f"[postgresql] skipped: {type(exc).__name__}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
