"""API keys: random, high-entropy bearer secrets of which only a SHA-256 hash is stored.

A plain SHA-256 (rather than a slow password hash) is what Stripe-style keys use: the key has
256 bits of entropy, so there is nothing to brute-force, and verification stays cheap on every
request.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

# One definition of what ``api_keys.key_hash`` holds: the registry's.
from adapters.registry.api_keys import hash_key

if TYPE_CHECKING:
    from adapters.registry.api_keys import ApiKeyRecord

KEY_PREFIX = "tpk_"
# What listings show of a key the service did not generate (an operator's TENANTS_BOOTSTRAP_API_KEY
# without tpk_): none of its characters, which are all secret.
OPERATOR_KEY_PREFIX = "(set by operator)"
Scope = Literal["tenants:read", "tenants:write", "tenants:delete", "keys:admin"]
ALL_SCOPES: tuple[str, ...] = get_args(Scope)
_DURATION_RE = re.compile(r"(\d{1,5})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def public_prefix(key: str) -> str:
    """A short, non-secret part of the key for listings and logs: ``tpk_`` and the next 6
    characters of a key the service generated (a deliberate hint: 6 of 43 random characters).
    Any other key (an operator's bootstrap value) is secret throughout: none of it is shown."""
    return key[: len(KEY_PREFIX) + 6] if key.startswith(KEY_PREFIX) else OPERATOR_KEY_PREFIX


BOOTSTRAP_KEY_ID = "key_bootstrap"


def bootstrap_record(key: str, now: datetime) -> ApiKeyRecord:
    """The record of the bootstrap key (``TENANTS_BOOTSTRAP_API_KEY`` or ``var/bootstrap-api-key``):
    one fixed id, every scope, no expiry. A changed value replaces the key registered under the id."""
    from adapters.registry.api_keys import ApiKeyRecord

    return ApiKeyRecord(
        id=BOOTSTRAP_KEY_ID,
        name="bootstrap",
        prefix=public_prefix(key),
        key_hash=hash_key(key),
        scopes=ALL_SCOPES,
        created_at=now,
    )


def local_bootstrap_key(var_dir: Path) -> str:
    """The generated development key under ``var/``, created on first use (mode 0600, in a
    directory created 0700)."""
    path = var_dir / "bootstrap-api-key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = generate_key()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


class ExpiryError(ValueError):
    """An expiry that is not understood, or already past; the message says which."""


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` (from ``now``) or an RFC 3339 time with its offset
    (``2027-01-31T00:00:00Z``). It must lie in the future: a key born expired is a mistake."""
    text = text.strip()
    match = _DURATION_RE.fullmatch(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            raise ExpiryError(f"{text!r} is not a positive duration")
        return now + timedelta(**{_UNITS[unit]: amount})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ExpiryError(
            f"{text!r} is neither a duration (30d, 12h, 90m, 2w) nor a time such as 2027-01-31T00:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise ExpiryError(f"{text!r} has no UTC offset; add Z or +HH:MM")
    check_expiry(when, now)
    return when.astimezone(UTC)


def check_expiry(when: datetime, now: datetime) -> None:
    if when <= now:
        raise ExpiryError(f"{when.isoformat()} is not in the future")


def canonical_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, each once, in ``ALL_SCOPES`` order; ValueError naming any unknown one."""
    wanted = set(scopes)
    unknown = sorted(wanted.difference(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(map(repr, unknown))}; known: {', '.join(ALL_SCOPES)}")
    if not wanted:
        raise ValueError(f"at least one scope is needed; known: {', '.join(ALL_SCOPES)}")
    return tuple(s for s in ALL_SCOPES if s in wanted)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str = field(repr=False)  # shown to its owner once, then only its hash exists
    record: ApiKeyRecord


def issue_key(name: str, scopes: Iterable[str], now: datetime, expires_at: datetime | None = None) -> IssuedKey:
    """A new key and the record to store for it (hash and public prefix, never the key)."""
    # Imported here so that `tenantctl` (which reads ALL_SCOPES) starts without SQLAlchemy.
    from adapters.registry.api_keys import ApiKeyRecord, new_key_id

    if expires_at is not None:
        check_expiry(expires_at, now)
    key = generate_key()
    record = ApiKeyRecord(
        id=new_key_id(),
        name=name,
        prefix=public_prefix(key),
        key_hash=hash_key(key),
        scopes=canonical_scopes(scopes),
        created_at=now,
        expires_at=expires_at,
    )
    return IssuedKey(key, record)


def key_status(record: ApiKeyRecord, now: datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "active" if record.is_active(now) else "expired"


def key_out(record: ApiKeyRecord, now: datetime) -> dict[str, Any]:
    """The public view of a key record, for the API and `tenantctl keys`: everything but the hash."""
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "scopes": list(record.scopes),
        "status": key_status(record, now),
        "created_at": record.created_at.isoformat(),
        "expires_at": _iso(record.expires_at),
        "revoked_at": _iso(record.revoked_at),
        "last_used_at": _iso(record.last_used_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
