"""API keys, stored by the SHA-256 of the whole key; the key itself is never stored."""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import transaction
from adapters.registry.errors import translate_errors
from adapters.registry.tables import api_keys
from domain.errors import ApiKeyConflict


def hash_key(key: str) -> str:
    """Hex SHA-256 of the whole key: what ``key_hash`` holds and ``find_by_hash`` looks up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    prefix: str  # the key's short public prefix, safe to show and log
    key_hash: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _to_row(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "key_hash": record.key_hash,
        "scopes": list(record.scopes),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
    }


class BootstrapChange(StrEnum):
    CREATED = "created"  # no bootstrap key was registered
    ROTATED = "rotated"  # another value was: it is replaced and no longer authenticates
    KEPT = "kept"  # this value was: kept as it is, a revocation included


def _from_row(row: Row[Any]) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        key_hash=m["key_hash"],
        scopes=tuple(m["scopes"] or ()),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
    )


class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _insert(self) -> Any:
        return (postgresql if self._engine.dialect.name == "postgresql" else sqlite).insert(api_keys)

    async def add(self, record: ApiKeyRecord) -> None:
        """Register a new key; ``ApiKeyConflict`` when its id or its value is registered already."""
        try:
            with translate_errors():
                async with transaction(self._engine, write=True) as conn:
                    await conn.execute(api_keys.insert().values(**_to_row(record)))
        except IntegrityError:
            # Not chained: the driver's error holds the statement's parameters (the hash), and
            # PostgreSQL's DETAIL line repeats the conflicting value.
            raise await self._conflict(record) from None

    async def _conflict(self, record: ApiKeyRecord) -> ApiKeyConflict:
        if await self.get(record.id) is not None:
            return ApiKeyConflict(f"an API key with id {record.id!r} exists already", holder_id=record.id)
        holder = await self.find_by_hash(record.key_hash)
        if holder is not None:
            return ApiKeyConflict(f"this key's value is already API key {holder.id!r}", holder_id=holder.id)
        return ApiKeyConflict("the API key conflicts with one registered meanwhile")

    async def put_bootstrap(self, record: ApiKeyRecord) -> tuple[ApiKeyRecord, BootstrapChange]:
        """Make ``record`` the key registered under ``record.id`` (the bootstrap key, at every
        start-up). The same value as registered: kept with its id, creation time, last use and
        any revocation (an operator's revocation is not undone by a restart), its name, prefix,
        scopes and expiry brought up to date. Another value: the row is replaced, so the old value stops
        authenticating. Concurrent start-ups with the same value all succeed (one creates or
        rotates, the others keep). ``ApiKeyConflict`` when another key holds this value."""
        for _ in range(3):
            try:
                with translate_errors():
                    return await self._put_bootstrap(record)
            except IntegrityError:
                # The value is registered under another id, or (PostgreSQL) a concurrent start-up
                # inserted the same row first and its unique index answered before ours waited.
                holder = await self.find_by_hash(record.key_hash)
                if holder is not None and holder.id != record.id:
                    raise ApiKeyConflict(
                        f"the value is already API key {holder.id!r} ({holder.name})", holder_id=holder.id
                    ) from None
        raise ApiKeyConflict(f"{record.id!r} could not be registered: concurrent changes kept conflicting")

    async def _put_bootstrap(self, record: ApiKeyRecord) -> tuple[ApiKeyRecord, BootstrapChange]:
        by_id = select(api_keys).where(api_keys.c.id == record.id)
        async with transaction(self._engine, write=True) as conn:
            # FOR UPDATE (PostgreSQL; SQLite holds its write lock already): a concurrent start-up
            # waits here and then sees this one's value, so it keeps rather than rotates again.
            current = (await conn.execute(by_id.with_for_update())).first()
            if current is None:
                insert = (
                    self._insert()
                    .values(**_to_row(record))
                    .on_conflict_do_nothing(index_elements=[api_keys.c.id])
                    .returning(*api_keys.c)
                )
                row = (await conn.execute(insert)).first()
                if row is not None:
                    return _from_row(row), BootstrapChange.CREATED
                # A concurrent start-up registered one first: compare with it as below.
                current = (await conn.execute(by_id.with_for_update())).one()
            if current._mapping["key_hash"] == record.key_hash:
                kept = (
                    update(api_keys)
                    .where(api_keys.c.id == record.id)
                    # The prefix too: a row from before today's prefix rule may hold part of the key.
                    .values(name=record.name, prefix=record.prefix, scopes=list(record.scopes), expires_at=record.expires_at)
                    .returning(*api_keys.c)
                )
                return _from_row((await conn.execute(kept)).one()), BootstrapChange.KEPT
            # Another value: a new key under the same id (its own creation time, not revoked).
            fresh = {k: v for k, v in _to_row(record).items() if k != "id"}
            rotated = update(api_keys).where(api_keys.c.id == record.id).values(**fresh).returning(*api_keys.c)
            return _from_row((await conn.execute(rotated)).one()), BootstrapChange.ROTATED

    async def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with translate_errors():
            async with transaction(self._engine, write=False) as conn:
                row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
        return None if row is None else _from_row(row)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        with translate_errors():
            async with transaction(self._engine, write=False) as conn:
                row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _from_row(row)

    async def touch(self, key_id: str, now: datetime, *, granularity_s: float = 60.0) -> None:
        """Record a use. Writes at most once per ``granularity_s`` per key, so authenticating a
        request does not cost a write (on SQLite, the database's write lock) every time."""
        stmt = (
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                or_(
                    api_keys.c.last_used_at.is_(None),
                    api_keys.c.last_used_at <= now - timedelta(seconds=granularity_s),
                ),
            )
            .values(last_used_at=now)
        )
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                await conn.execute(stmt)

    async def list(self) -> builtins.list[ApiKeyRecord]:
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        with translate_errors():
            async with transaction(self._engine, write=False) as conn:
                rows = (await conn.execute(stmt)).all()
        return [_from_row(row) for row in rows]

    async def revoke(self, key_id: str, now: datetime) -> bool:
        """True when the key existed and was not revoked before."""
        stmt = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                result = await conn.execute(stmt)
        return bool(result.rowcount == 1)
