"""The event dispatcher: delivers the registry's outbox to EventBridge and the webhooks.

Runs next to the worker (in-process under `tenantctl serve`, and under `tenantctl worker`); any
number of them can share one registry, since rows are claimed under a lease. Woken right after a
commit that wrote lifecycle events (in this process) and polling otherwise, for events written by
other processes and for retries coming due. On shutdown it stops claiming and lets the deliveries
in flight finish within the grace period; what it could not settle is sent again once its lease
expires (at least once: receivers de-duplicate on the event id).

Logs name the destination by its outbox name ("webhook:<hash>", "eventbridge:<bus>"), never a
webhook URL or the signing secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping

import structlog

from adapters.events.base import DeliveryFailed, Publisher
from adapters.registry.outbox import DEAD, OutboxRow, OutboxStore
from domain.lifecycle import RetryPolicy
from domain.ports import Clock
from service.metrics import Metrics

log = structlog.get_logger("tenants.events")


class EventDispatcher:
    def __init__(
        self,
        store: OutboxStore,
        publishers: Mapping[str, Publisher],
        clock: Clock,
        policy: RetryPolicy,
        metrics: Metrics | None = None,
        *,
        batch_size: int = 20,
        lease_seconds: float = 60.0,
        poll_interval_s: float = 1.0,
        shutdown_grace_s: float = 20.0,
    ) -> None:
        self._store = store
        self._publishers = dict(publishers)
        self._clock = clock
        self._policy = policy
        self._metrics = metrics
        self._batch = batch_size
        self._lease = lease_seconds
        self._poll = poll_interval_s
        self._grace = shutdown_grace_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:events"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def destinations(self) -> list[str]:
        return list(self._publishers)

    def wake(self) -> None:
        """Events were just committed: deliver now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="tenants-events")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        task, self._loop_task = self._loop_task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self._grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        log.info("event_dispatcher_started", owner=self.owner, destinations=self.destinations)
        while not self._stopping.is_set():
            self._wake.clear()  # before the claim: a wake during it is not lost
            try:
                claimed = await self.run_once()
            except Exception as exc:  # registry down: keep the loop alive, try again later
                log.warning("outbox_claim_failed", error=type(exc).__name__)
                claimed = 0
            if claimed:
                continue  # delivering may have made a tenant's next event due: look again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
        log.info("event_dispatcher_stopped", owner=self.owner)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them, concurrently; how many were claimed. The
        deliveries that landed are recorded together, in one transaction."""
        rows = await self._store.claim(self.owner, self._clock.now(), self._lease, self.destinations, self._batch)
        if not rows:
            return 0
        landed = [row for row, ok in zip(rows, await asyncio.gather(*(self._deliver(r) for r in rows))) if ok]
        if landed:
            try:
                recorded = await self._store.delivered_many(landed, self._clock.now())
            except Exception as exc:  # the leases expire and these rows are sent again
                log.warning("event_settle_failed", error=type(exc).__name__, deliveries=len(landed))
                return len(rows)
            for row in landed:
                kind = self._publishers[row.destination].kind
                if self._metrics is not None:
                    self._metrics.events_delivered.labels(kind).inc()
                log.info(
                    "event_delivered" if row.id in recorded else "event_delivered_after_lease_lost",
                    event_id=row.event_id,
                    event_type=row.event_type,
                    tenant_id=row.tenant_id,
                    destination=row.destination,
                    attempt=row.attempts + 1,
                )
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> bool:
        """Send one row; True when it landed (recorded by the caller), False when it failed (recorded here)."""
        publisher = self._publishers[row.destination]
        try:
            await publisher.publish(row.payload)
        except Exception as exc:  # DeliveryFailed, or a publisher bug that must not kill the loop
            bound = log.bind(
                event_id=row.event_id,
                event_type=row.event_type,
                tenant_id=row.tenant_id,
                destination=row.destination,
                attempt=row.attempts + 1,
            )
            if isinstance(exc, DeliveryFailed):
                await self._failed(row, publisher.kind, exc.reason, exc.permanent, bound)
            else:
                await self._failed(row, publisher.kind, f"unexpected {type(exc).__name__}", False, bound)
            return False
        return True

    async def _failed(
        self, row: OutboxRow, kind: str, reason: str, permanent: bool, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        try:
            state = await self._store.failed(row, self._clock.now(), reason, permanent=permanent, policy=self._policy)
        except Exception as exc:
            bound.warning("event_settle_failed", error=type(exc).__name__)
            return
        if state is None:
            return  # another dispatcher holds the row now
        outcome = "dead" if state == DEAD else "retry"
        if self._metrics is not None:
            self._metrics.events_failed.labels(kind, outcome).inc()
        if state == DEAD:
            # Visible: tenants_events_dead, this log line, and `tenantctl events list --state dead`;
            # `tenantctl events retry` sends them again.
            bound.error("event_dead", reason=reason, permanent=permanent)
        else:
            bound.warning("event_delivery_failed", reason=reason)
