"""Verified API keys, kept briefly in this process so a request needs no registry read to authenticate.

An entry maps a key's SHA-256 (never the key) to the record read from the registry, and is
trusted for ``ttl_s`` seconds from that read, after which the next request reads the registry
again. Hence the bound on revocation (README, Configuration; SECURITY.md):

- revoked through this process (``DELETE /v1/keys/{id}``): at once, ``forget`` drops the entry;
- revoked elsewhere (``tenantctl keys revoke``, another replica): within ``ttl_s`` seconds;
- expiry is checked on every request against the cached ``expires_at``: exact, like before.

Only active keys are kept (never a miss, so unknown keys cannot fill it), at most ``max_entries``
of them, least recently used dropped first. ``ttl_s`` 0 turns the cache off. ``lookup`` makes
concurrent requests with the same key share one registry read: when an entry falls due under load,
the registry sees one query, not one per request in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from adapters.registry.api_keys import ApiKeyRecord


class VerifiedKeyCache:
    def __init__(self, ttl_s: float, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[ApiKeyRecord, float]] = OrderedDict()  # hash -> (record, read at)
        self._reading: dict[str, asyncio.Task[ApiKeyRecord | None]] = {}  # hash -> the registry read under way
        self._forgets = 0  # a read that began before a forget() does not keep what it read

    async def lookup(
        self, key_hash: str, read: Callable[[], Awaitable[ApiKeyRecord | None]], now: datetime
    ) -> ApiKeyRecord | None:
        """The cached record, else the registry's (``read``), which is then kept if active. One
        read per hash at a time: concurrent callers await the same one (and each gets its error)."""
        record = self.get(key_hash)
        if record is not None:
            return record
        task = self._reading.get(key_hash)
        if task is None:

            forgets = self._forgets

            async def read_and_keep() -> ApiKeyRecord | None:
                found = await read()
                if found is not None and forgets == self._forgets:
                    self.put(key_hash, found, now)
                return found

            task = asyncio.ensure_future(read_and_keep())
            self._reading[key_hash] = task
            task.add_done_callback(lambda _: self._reading.pop(key_hash, None))
        # shield: a caller that goes away (client disconnect) does not cancel the others' read.
        return await asyncio.shield(task)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        """The record read for this hash less than ``ttl_s`` seconds ago, else None."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        record, read_at = entry
        if self.clock() - read_at >= self.ttl_s:
            del self._entries[key_hash]
            return None
        self._entries.move_to_end(key_hash)
        return record

    def put(self, key_hash: str, record: ApiKeyRecord, now: datetime) -> None:
        """Keep ``record`` (just read from the registry) if the key is active at ``now``."""
        if self.ttl_s <= 0 or not record.is_active(now):
            return
        self._entries[key_hash] = (record, self.clock())
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def used(self, key_hash: str, at: datetime) -> None:
        """The key's use at ``at`` was written to the registry: keep its ``last_used_at`` in step,
        without extending the entry's life (the revocation bound counts from the registry read)."""
        entry = self._entries.get(key_hash)
        if entry is not None:
            self._entries[key_hash] = (replace(entry[0], last_used_at=at), entry[1])

    def forget(self, key_id: str) -> None:
        """Drop every entry of this key (it was just revoked here); a read under way will not keep
        what it read."""
        self._forgets += 1
        for key_hash in [h for h, (record, _) in self._entries.items() if record.id == key_id]:
            del self._entries[key_hash]
