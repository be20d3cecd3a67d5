"""In-process "this tenant may have changed" notifications, so ``Prefer: wait`` answers at once.

The worker's job handlers are wrapped by ``notifying``: when a run ends (its final status already
committed), every request waiting on that tenant wakes and reads the registry again, instead of
finding out at its next poll. Waiters still poll, more slowly, for runs in other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from domain.ports import Job

Handler = Callable[[str, Job], Awaitable[object]]


class TenantWaiters:
    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, tenant_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever a run of ``tenant_id`` ends while the block runs."""
        event = asyncio.Event()
        self._events.setdefault(tenant_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(tenant_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[tenant_id]

    def notify(self, tenant_id: str) -> None:
        for event in self._events.get(tenant_id, ()):
            event.set()

    def notifying(self, handler: Handler) -> Handler:
        async def run(tenant_id: str, job: Job) -> object:
            try:
                return await handler(tenant_id, job)
            finally:
                self.notify(tenant_id)

        return run
