"""Signed webhooks over httpx: one POST per event, signed as Standard Webhooks (signing.py).

2xx: delivered. 408, 429 and 5xx, a timeout or a connection error: failed, tried again later.
Any other status (4xx, or a 3xx: redirects are not followed): failed for good. Failure reasons
name the status or the error class, never the URL (it may carry a token) nor the secret.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from adapters.events.base import DeliveryFailed
from adapters.events.signing import EVENT_TYPE_HEADER, SigningKey, WebhookSigner

RETRYABLE_STATUSES = frozenset({408, 429})
USER_AGENT = "tenant-identity-provisioner-webhooks/1"


def webhook_destination(url: str) -> str:
    """The outbox's name for a webhook URL: a hash, so the URL itself is never stored or logged."""
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16]


def encode_body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


class WebhookPublisher:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | Sequence[SigningKey],
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._signer = WebhookSigner(secret)
        self._client = client
        self._timeout = timeout_s
        self._clock = clock
        self.destination = webhook_destination(url)

    def __repr__(self) -> str:  # never the URL or the secret
        return f"WebhookPublisher({self.destination})"

    async def publish(self, envelope: dict[str, Any]) -> None:
        body = encode_body(envelope)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # webhook-id is the event's id on every attempt; webhook-timestamp is this attempt's.
            **self._signer.headers(str(envelope["id"]), int(self._clock()), body),
            EVENT_TYPE_HEADER: str(envelope["type"]),
        }
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"no response ({type(exc).__name__})") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        permanent = status < 500 and status not in RETRYABLE_STATUSES
        raise DeliveryFailed(f"HTTP {status}", permanent=permanent)
