"""The worker loop: claims jobs from the registry and runs them, renewing each job's lease.

Runs in-process under `tenantctl serve` or alone under `tenantctl worker`; any number of them can
share one PostgreSQL registry. On shutdown it stops claiming, lets running jobs finish within the
grace period, then cancels and releases what is left so another worker takes it over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

import structlog

from domain.errors import DomainError
from domain.ports import Clock, Job, UnitOfWorkFactory
from domain.tenant import JobKind

log = structlog.get_logger("tenants.worker")
MAX_ATTEMPTS = 5
# Jobs leased per claim transaction, at most (and never more than free slots).
CLAIM_BATCH = 32


class Worker:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        handlers: dict[JobKind, Callable[[str, Job], Awaitable[object]]],
        clock: Clock,
        *,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_interval_s: float = 1.0,
        shutdown_grace_s: float = 20.0,
    ) -> None:
        self._uow = uow
        self._handlers = handlers
        self._clock = clock
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._poll = poll_interval_s
        self._grace = shutdown_grace_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Tell the loop a job was just enqueued (saves up to one poll interval)."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="tenants-worker")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task

    async def _loop(self) -> None:
        log.info("worker_started", worker_id=self.worker_id, concurrency=self._concurrency)
        while not self._stopping.is_set():
            claimed = False
            free = self._concurrency - len(self._running)
            if free > 0:
                try:
                    async with self._uow() as uow:
                        # Several at once: a burst of onboardings is taken on at the pace the
                        # registry allows, not one job per claim transaction.
                        jobs = await uow.jobs.claim_batch(
                            self.worker_id, self._clock.now(), self._lease, min(free, CLAIM_BATCH)
                        )
                        await uow.commit()
                except Exception as exc:  # registry down: keep the loop alive, try again later
                    log.warning("claim_failed", error=type(exc).__name__)
                    jobs = []
                for job in jobs:
                    claimed = True
                    task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
                    self._running.add(task)
                    task.add_done_callback(self._done)
            if claimed and len(self._running) < self._concurrency:
                continue
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
        await self._drain()
        log.info("worker_stopped", worker_id=self.worker_id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _drain(self) -> None:
        if not self._running:
            return
        _, still = await asyncio.wait(set(self._running), timeout=self._grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)

    async def _run(self, job: Job) -> None:
        bound = log.bind(job_id=job.id, tenant_id=job.tenant_id, kind=job.kind.value, attempt=job.attempts)
        heartbeat = asyncio.create_task(self._heartbeat(job))
        finished = False
        try:
            bound.info("job_started")
            await self._handlers[job.kind](job.tenant_id, job)
            finished = True
        except asyncio.CancelledError:
            bound.warning("job_cancelled")
        except DomainError as exc:
            bound.warning("job_error", error_code=exc.code)
            await self._backoff(job)
        except Exception:
            bound.exception("job_crashed")
            await self._backoff(job)
            # A job that crashes every time must not spin forever; the tenant keeps its state and
            # recorded outputs, and an operator can DELETE it or retry once the cause is fixed.
            finished = job.attempts >= MAX_ATTEMPTS
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._settle(job, finished, bound)

    async def _backoff(self, job: Job) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(job.attempts, 6)))

    async def _settle(self, job: Job, finished: bool, bound: structlog.typing.FilteringBoundLogger) -> None:
        try:
            async with self._uow() as uow:
                if finished:
                    await uow.jobs.complete(job, self._clock.now())
                else:
                    # Not finished (registry outage, shutdown): hand it back for another try.
                    await uow.jobs.release(job, self._clock.now())
                await uow.commit()
            bound.info("job_finished" if finished else "job_released")
        except Exception as exc:  # the lease expires and another worker resumes it
            bound.warning("job_settle_failed", error=type(exc).__name__)

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                async with self._uow() as uow:
                    kept = await uow.jobs.extend(job, self._clock.now(), self._lease)
                    await uow.commit()
                if not kept:
                    log.warning("lease_lost", job_id=job.id, tenant_id=job.tenant_id)
                    return
            except Exception as exc:
                log.warning("lease_renew_failed", job_id=job.id, error=type(exc).__name__)
