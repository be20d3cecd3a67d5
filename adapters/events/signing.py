"""Webhook signatures: the Standard Webhooks scheme (github.com/standard-webhooks/standard-webhooks),
signed by its reference library ``standardwebhooks``. Every webhook request carries::

    webhook-id: <the event's uuid; the same on every retry, for de-duplication>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")> [v1,<...> ...]
    Tenants-Event-Type: <e.g. tenant.provisioning.succeeded>

with one ``v1,`` signature per configured secret (several while a secret is rotated). A receiver
verifies with its language's Standard Webhooks library, in Python
``standardwebhooks.Webhook("whsec_...").verify(raw_body, headers)``, which also refuses a timestamp
more than 5 minutes away from its clock (a replayed request). This module has no verifier of its own.

Secrets (``TENANTS_WEBHOOK_SECRET``) are ``whsec_<base64 of the key bytes>``, several separated by
spaces or commas. A secret without the prefix (this service's scheme before Standard Webhooks) is
still accepted, as its UTF-8 bytes, and is the same key as ``whsec_`` + base64 of those bytes.

Deprecated, sent for this release only so that receivers can move at their own pace: the service's
former headers ``Tenants-Event-Id`` and ``Tenants-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256(key, "<t>.<raw body>")>`` (one ``v1=`` per key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from standardwebhooks import Webhook

WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
EVENT_TYPE_HEADER = "Tenants-Event-Type"
LEGACY_EVENT_ID_HEADER = "Tenants-Event-Id"  # deprecated: webhook-id
LEGACY_SIGNATURE_HEADER = "Tenants-Signature"  # deprecated: webhook-signature
WHSEC_PREFIX = "whsec_"
MIN_KEY_BYTES = 16
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_NOT_BASE64 = "after whsec_ comes the key in standard base64"
_OLD_WHSEC = "; an older plain secret that begins with whsec_ is written whsec_ + base64 of its whole text"


@dataclass(frozen=True)
class SigningKey:
    key: bytes = field(repr=False)
    plain: bool  # written without whsec_ (deprecated): the key is the text's UTF-8 bytes


def _decode_whsec(encoded: str) -> bytes:
    # Strict: the receivers' libraries decode leniently (skipping characters outside the alphabet),
    # so a URL-safe or mistyped secret would give them another key than ours, and nothing verifies.
    if not _BASE64.fullmatch(encoded):
        raise ValueError(_NOT_BASE64 + " (A-Z a-z 0-9 + /, optional = padding)" + _OLD_WHSEC)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError(_NOT_BASE64 + " (its length is not one of base64)" + _OLD_WHSEC) from None


def parse_secrets(text: str) -> tuple[SigningKey, ...]:
    """The keys of a ``TENANTS_WEBHOOK_SECRET`` value, in order, without repeats. Raises ValueError
    saying what is wrong; the message never quotes a secret."""
    parts = [part for part in re.split(r"[\s,]+", text) if part]
    if not parts:
        raise ValueError("no secret given")
    keys: list[SigningKey] = []
    for n, part in enumerate(parts, 1):
        where = f"secret {n} of {len(parts)}: " if len(parts) > 1 else ""
        try:
            if part.startswith(WHSEC_PREFIX):
                key = SigningKey(_decode_whsec(part.removeprefix(WHSEC_PREFIX)), plain=False)
                if len(key.key) < MIN_KEY_BYTES:
                    raise ValueError(f"the key must be at least {MIN_KEY_BYTES} bytes (32 random bytes are usual)")
            else:
                key = SigningKey(part.encode(), plain=True)
                if len(part) < MIN_KEY_BYTES:
                    raise ValueError(f"must be at least {MIN_KEY_BYTES} characters (or whsec_ + base64 of a key)")
        except ValueError as exc:
            raise ValueError(where + str(exc)) from None
        if key.key not in (k.key for k in keys):
            keys.append(key)
    return tuple(keys)


class WebhookSigner:
    """Signs a webhook request with every configured key, through ``standardwebhooks``."""

    def __init__(self, secrets: str | Sequence[SigningKey]) -> None:
        keys = parse_secrets(secrets) if isinstance(secrets, str) else tuple(secrets)
        if not keys:
            raise ValueError("no webhook secret")
        self._keys = [k.key for k in keys]
        self._webhooks = [Webhook(key) for key in self._keys]

    def __repr__(self) -> str:  # never a key
        return f"WebhookSigner({len(self._keys)} keys)"

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        when = datetime.fromtimestamp(timestamp, tz=UTC)
        signatures = " ".join(hook.sign(msg_id, when, body) for hook in self._webhooks)
        return {
            WEBHOOK_ID_HEADER: msg_id,
            WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
            WEBHOOK_SIGNATURE_HEADER: signatures,
            # Deprecated; removed in the next release (README "Webhook signatures").
            LEGACY_EVENT_ID_HEADER: msg_id,
            LEGACY_SIGNATURE_HEADER: ",".join(
                [f"t={timestamp}"]
                + [f"v1={hmac.new(key, f'{timestamp}.'.encode() + body, hashlib.sha256).hexdigest()}" for key in self._keys]
            ),
        }
