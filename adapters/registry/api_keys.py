"""API keys, stored by the SHA-256 of the whole key; the key itself is never stored."""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.engine import transaction
from adapters.registry.errors import translate_errors
from adapters.registry.tables import api_keys


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
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                await conn.execute(api_keys.insert().values(**_to_row(record)))

    async def ensure(self, record: ApiKeyRecord) -> ApiKeyRecord:
        """Register ``record`` unless a key with its hash exists; then bring that key's name,
        scopes and expiry up to date (a bootstrap key registered at every start-up). Its id,
        creation time, last use and any revocation are kept: a revoked key stays revoked."""
        ins = self._insert().values(**_to_row(record))
        stmt = ins.on_conflict_do_update(
            index_elements=[api_keys.c.key_hash],
            set_={"name": ins.excluded.name, "scopes": ins.excluded.scopes, "expires_at": ins.excluded.expires_at},
        ).returning(*api_keys.c)
        with translate_errors():
            async with transaction(self._engine, write=True) as conn:
                row = (await conn.execute(stmt)).one()
        return _from_row(row)

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
