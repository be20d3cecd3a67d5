"""The lifecycle event outbox on SQLite and PostgreSQL: written in the transaction of the change,
claimed under a lease by any number of dispatchers (each row once), retried with backoff, given
up into ``dead`` and retried by an operator."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.outbox import DEAD, DELIVERED, PENDING, OutboxStore, outbox_stats
from adapters.registry.sql import SqlUnitOfWorkFactory
from adapters.registry.tables import outbox
from domain.lifecycle import (
    PROVISIONING_STARTED,
    LifecycleEvent,
    RetryPolicy,
    lifecycle_event,
)
from domain.tenant import Cell, JobKind, TenantSpec, new_tenant

HOOK, BUS = "webhook:0123456789abcdef", "eventbridge:tenants"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_s=10.0, cap_s=40.0)


def event(tenant_id: str, at: datetime = T0) -> LifecycleEvent:
    return LifecycleEvent(PROVISIONING_STARTED, tenant_id, at, {"tier": "basic"})


async def write(engine: AsyncEngine, events: list[LifecycleEvent], destinations: tuple[str, ...] = (HOOK,)) -> None:
    factory = SqlUnitOfWorkFactory(engine, destinations)
    async with factory() as uow:
        for e in events:
            await uow.outbox.add(e)
        await uow.commit()


async def states(engine: AsyncEngine) -> list[tuple[str, str, str, int]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(outbox.c.event_id, outbox.c.destination, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]


async def test_an_event_commits_with_its_state_change_and_a_rollback_writes_none(engine: AsyncEngine) -> None:
    committed: list[list[LifecycleEvent]] = []
    factory = SqlUnitOfWorkFactory(engine, (HOOK, BUS), committed.append)
    tenant = new_tenant(TenantSpec("acme", "basic", "Acme"), Cell("123456789012", "us-east-1"), T0)
    async with factory() as uow:
        await uow.tenants.add(tenant)
        await uow.jobs.enqueue("acme", JobKind.PROVISION, T0)
        await uow.outbox.add(lifecycle_event(PROVISIONING_STARTED, tenant, T0))
        await uow.rollback()
    assert await states(engine) == [] and committed == []

    started = lifecycle_event(PROVISIONING_STARTED, tenant, T0)
    async with factory() as uow:
        await uow.tenants.add(tenant)
        await uow.jobs.enqueue("acme", JobKind.PROVISION, T0)
        await uow.outbox.add(started)
        await uow.commit()
    assert await states(engine) == [(started.id, HOOK, PENDING, 0), (started.id, BUS, PENDING, 0)]
    assert committed == [[started]]

    # Leaving the block without committing discards the event with the rest.
    async with factory() as uow:
        await uow.outbox.add(event("acme"))
    assert len(await states(engine)) == 2 and len(committed) == 1


async def test_no_destination_writes_no_row(engine: AsyncEngine) -> None:
    await write(engine, [event("acme")], destinations=())
    assert await states(engine) == []


async def test_two_dispatchers_claiming_at_once_get_each_row_once_in_order_per_tenant(engine: AsyncEngine) -> None:
    tenants = [f"t{i}" for i in range(8)]
    written = [event(t, T0 + timedelta(seconds=n)) for n in range(3) for t in tenants]
    await write(engine, written, destinations=(HOOK, BUS))
    store = OutboxStore(engine)
    delivered: list[tuple[str, str, str]] = []  # (owner, destination, event id)

    async def dispatcher(owner: str) -> None:
        idle = 0
        while idle < 3:
            rows = await store.claim(owner, T0 + timedelta(minutes=1), 60, [HOOK, BUS], 4)
            idle = 0 if rows else idle + 1
            for row in rows:
                await asyncio.sleep(0)  # let the other dispatcher in between
                assert await store.delivered(row, T0 + timedelta(minutes=1))
                delivered.append((owner, row.destination, row.event_id))

    await asyncio.gather(dispatcher("a"), dispatcher("b"))
    counts = Counter((d, e) for _, d, e in delivered)
    assert len(counts) == 2 * len(written) and set(counts.values()) == {1}
    assert {owner for owner, _, _ in delivered} <= {"a", "b"}
    order = {e.id: n for n, e in enumerate(written)}
    for destination in (HOOK, BUS):
        for tenant in tenants:
            mine = [order[e] for _, d, e in delivered if d == destination and written[order[e]].tenant_id == tenant]
            assert mine == sorted(mine), (destination, tenant)
    assert {s for _, _, s, _ in await states(engine)} == {DELIVERED}


async def test_a_leased_row_is_not_claimed_again_until_its_lease_expires(engine: AsyncEngine) -> None:
    await write(engine, [event("acme")])
    store = OutboxStore(engine)
    [row] = await store.claim("a", T0, 30, [HOOK], 10)
    assert await store.claim("b", T0 + timedelta(seconds=29), 30, [HOOK], 10) == []
    [again] = await store.claim("b", T0 + timedelta(seconds=31), 30, [HOOK], 10)
    assert again.id == row.id
    assert not await store.delivered(row, T0 + timedelta(seconds=32))  # a's lease is gone: fenced
    assert await store.delivered(again, T0 + timedelta(seconds=32))


async def test_a_tenants_later_event_waits_for_the_earlier_one(engine: AsyncEngine) -> None:
    first, second = event("acme"), event("acme", T0 + timedelta(seconds=1))
    other = event("other")
    await write(engine, [first, second, other])
    store = OutboxStore(engine)
    claimed = await store.claim("a", T0 + timedelta(seconds=5), 30, [HOOK], 10)
    assert [r.event_id for r in claimed] == [first.id, other.id]
    await store.failed(claimed[0], T0 + timedelta(seconds=5), "HTTP 500", permanent=False, policy=POLICY)
    # The first is backing off: the second still waits behind it.
    assert await store.claim("a", T0 + timedelta(seconds=6), 30, [HOOK], 10) == []


async def test_failures_back_off_then_go_dead_and_an_operator_retry_sends_again(engine: AsyncEngine) -> None:
    e = event("acme")
    await write(engine, [e])
    store = OutboxStore(engine)
    now = T0
    for attempt in (1, 2):
        [row] = await store.claim("a", now, 30, [HOOK], 10)
        assert row.attempts == attempt - 1
        assert await store.failed(row, now, "HTTP 503", permanent=False, policy=POLICY) == PENDING
        # Not due before the backoff's lower bound (half the doubled base), due after its cap.
        floor, ceiling = POLICY.base_s * 2 ** (attempt - 1) / 2, POLICY.base_s * 2 ** (attempt - 1)
        assert await store.claim("a", now + timedelta(seconds=floor - 0.5), 30, [HOOK], 10) == []
        now += timedelta(seconds=ceiling + 0.5)
    [row] = await store.claim("a", now, 30, [HOOK], 10)
    assert await store.failed(row, now, "HTTP 503", permanent=False, policy=POLICY) == DEAD
    assert await store.claim("a", now + timedelta(days=1), 30, [HOOK], 10) == []
    assert await states(engine) == [(e.id, HOOK, DEAD, 3)]
    stats = await outbox_stats(engine)
    assert (stats.pending, stats.dead) == (0, 1)
    [listed] = await store.rows(state=DEAD)
    assert listed["last_error"] == "HTTP 503" and "payload" not in listed

    assert await store.retry_dead(now, destination=HOOK) == 1
    [row] = await store.claim("a", now, 30, [HOOK], 10)
    assert row.attempts == 0
    assert await store.delivered(row, now)
    assert await states(engine) == [(e.id, HOOK, DELIVERED, 1)]


async def test_a_permanent_failure_is_dead_at_once_and_other_destinations_go_on(engine: AsyncEngine) -> None:
    e = event("acme")
    await write(engine, [e], destinations=(HOOK, BUS))
    store = OutboxStore(engine)
    rows = {r.destination: r for r in await store.claim("a", T0, 30, [HOOK, BUS], 10)}
    assert await store.failed(rows[HOOK], T0, "HTTP 410", permanent=True, policy=POLICY) == DEAD
    assert await store.delivered(rows[BUS], T0)
    assert sorted(s[1:3] for s in await states(engine)) == [(BUS, DELIVERED), (HOOK, DEAD)]
    stats = await outbox_stats(engine)
    assert (stats.pending, stats.dead, stats.oldest_pending_created_at) == (0, 1, None)


async def test_only_configured_destinations_are_claimed_and_stats_count_pending(engine: AsyncEngine) -> None:
    await write(engine, [event("acme")], destinations=(HOOK, BUS))
    store = OutboxStore(engine)
    [row] = await store.claim("a", T0, 30, [BUS], 10)
    assert row.destination == BUS
    stats = await outbox_stats(engine)
    assert stats.pending == 2 and stats.oldest_pending_created_at == T0


@pytest.mark.parametrize("limit", [0])
async def test_a_claim_of_nothing_claims_nothing(engine: AsyncEngine, limit: int) -> None:
    await write(engine, [event("acme")])
    assert await OutboxStore(engine).claim("a", T0, 30, [HOOK], limit) == []
    assert await OutboxStore(engine).claim("a", T0, 30, [], 10) == []


def test_tenantctl_events_lists_dead_deliveries_and_retries_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from adapters.registry.engine import make_engine
    from adapters.registry.migrate import upgrade
    from service.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    e = event("acme")

    async def set_up() -> None:
        await upgrade(url)
        engine = make_engine(url)
        try:
            await write(engine, [e], destinations=(HOOK, BUS))
            store = OutboxStore(engine)
            rows = {r.destination: r for r in await store.claim("a", T0, 30, [HOOK, BUS], 10)}
            await store.failed(rows[HOOK], T0, "HTTP 410", permanent=True, policy=POLICY)
            await store.delivered(rows[BUS], T0)
        finally:
            await engine.dispose()

    asyncio.run(set_up())
    runner = CliRunner()
    env = {"TENANTS_DATABASE_URL": url}
    listed = runner.invoke(main, ["events", "list", "--state", "dead"], env=env)
    assert listed.exit_code == 0, listed.output
    [line] = listed.stdout.splitlines()
    row = json.loads(line)
    assert (row["event_id"], row["destination"], row["state"], row["last_error"]) == (e.id, HOOK, "dead", "HTTP 410")
    retried = runner.invoke(main, ["events", "retry", "--destination", HOOK], env=env)
    assert retried.exit_code == 0 and "1 dead deliveries queued again" in retried.output
    listed = runner.invoke(main, ["events", "list", "--state", "dead"], env=env)
    assert listed.stdout == ""
    pending = runner.invoke(main, ["events", "list", "--state", "pending"], env=env)
    assert json.loads(pending.stdout)["attempts"] == 0


class _Flaky:
    """A publisher failing as scripted: a list of DeliveryFailed (or None for success) per call."""

    kind = "webhook"

    def __init__(self, script: list[Exception | None]) -> None:
        self.script = script
        self.calls: list[dict[str, object]] = []

    async def publish(self, envelope: dict[str, object]) -> None:
        self.calls.append(envelope)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome


async def test_the_dispatcher_retries_then_gives_up_visibly(engine: AsyncEngine) -> None:
    from structlog.testing import capture_logs

    from adapters.events.base import DeliveryFailed
    from service.events import EventDispatcher
    from service.metrics import Metrics
    from tests.unit.fakes import ManualClock

    clock = ManualClock(T0)
    e = event("acme")
    await write(engine, [e], destinations=(HOOK,))
    publisher = _Flaky([DeliveryFailed("HTTP 503"), DeliveryFailed("HTTP 503"), DeliveryFailed("HTTP 503")])
    metrics = Metrics()
    dispatcher = EventDispatcher(OutboxStore(engine), {HOOK: publisher}, clock, POLICY, metrics)
    with capture_logs() as logs:
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0  # backing off
        clock.advance(POLICY.cap_s)
        assert await dispatcher.run_once() == 1
        clock.advance(POLICY.cap_s)
        assert await dispatcher.run_once() == 1
        clock.advance(86400)
        assert await dispatcher.run_once() == 0  # dead: no more attempts
    assert len(publisher.calls) == 3 and publisher.calls[0]["id"] == e.id
    assert [entry["event"] for entry in logs if entry["log_level"] in ("warning", "error")] == [
        "event_delivery_failed",
        "event_delivery_failed",
        "event_dead",
    ]
    assert logs[-1]["destination"] == HOOK and logs[-1]["reason"] == "HTTP 503"
    assert metrics.events_failed.labels("webhook", "retry")._value.get() == 2
    assert metrics.events_failed.labels("webhook", "dead")._value.get() == 1
    rendered = (await metrics.render(engine, clock.now())).decode()
    assert "tenants_events_dead 1.0" in rendered and "tenants_events_pending 0.0" in rendered


async def test_a_batch_is_recorded_delivered_at_once_except_rows_whose_lease_was_lost(engine: AsyncEngine) -> None:
    await write(engine, [event("acme"), event("other")])
    store = OutboxStore(engine)
    rows = await store.claim("a", T0, 30, [HOOK], 10)
    assert len(rows) == 2
    [taken] = await store.claim("b", T0 + timedelta(seconds=31), 30, [HOOK], 1)  # a's lease expired
    recorded = await store.delivered_many(rows, T0 + timedelta(seconds=32))
    assert recorded == {r.id for r in rows} - {taken.id}
    assert sorted(s for _, _, s, _ in await states(engine)) == [DELIVERED, PENDING]
    with pytest.raises(ValueError):
        await store.delivered_many([rows[0], taken], T0)
