"""Webhook signatures: HMAC-SHA256 over ``{timestamp}.{body}``, with a timestamp against replay.

Standard library only, so a receiver can import it (or copy it). Every webhook request carries::

    Tenants-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    Tenants-Event-Id: <the event's uuid; the same on every retry, for de-duplication>
    Tenants-Event-Type: <e.g. tenant.provisioning.succeeded>

A receiver recomputes the HMAC over the raw body bytes it received, compares it in constant time,
and rejects a timestamp more than ``tolerance_s`` away from its clock (a captured request cannot be
replayed later). Several ``v1=`` entries may appear (a sender rotating secrets); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "Tenants-Signature"
EVENT_ID_HEADER = "Tenants-Event-Id"
EVENT_TYPE_HEADER = "Tenants-Event-Type"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The request is not a genuine, fresh webhook from this service."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def compute_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> int:
    """Check a webhook request; return its timestamp, or raise SignatureError saying why not.

    ``headers`` is any mapping of the request's headers (looked up case-insensitively); ``body``
    the raw bytes as received (not re-serialised JSON)."""
    value = _header(headers, SIGNATURE_HEADER)
    if not value:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(item)
            except ValueError:
                raise SignatureError("the timestamp is not an integer") from None
        elif key == "v1" and item:
            signatures.append(item)
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} needs t=<unix seconds> and v1=<hex signature>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"the timestamp is more than {tolerance_s:g} s away from now (a replay, or a skewed clock)"
        )
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("the signature does not match the body")
    return timestamp
