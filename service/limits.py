"""Limits on what one request and one credential may ask of the service.

- ``HeaderSizeLimit``: request header fields larger than ``max_header_bytes`` in total -> 431.
- ``CredentialRateLimit``: one token bucket per authenticated principal -> 429 with
  ``Retry-After`` once it is empty; every answer to an authenticated request carries
  ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``.
- ``reject_unknown_query_params``: a /v1 query parameter the OpenAPI document does not name -> 422.

The buckets live in this process's memory, so each replica limits on its own. Litestar's own
``RateLimitMiddleware`` is not used: it counts fixed windows (a client can send twice the limit
across a window boundary), has no burst separate from the rate, and keys by client address unless
given a key function; a token bucket is a few lines and says exactly what the settings say.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import DomainError
from domain.token_bucket import TokenBucket
from service.errors import HeadersTooLarge, RateLimited, domain_error_handler
from service.principal import Principal


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the bucket is full again
    retry_after_s: int  # until the next request is admitted (0 when this one was)

    def headers(self) -> dict[str, str]:
        # draft-ietf-httpapi-ratelimit-headers (the -06 field names, also Litestar's and GitHub's).
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens at most, refilled at ``rate`` per second; each
    request takes one. Only the ``max_keys`` most recently seen keys are kept: a key dropped for
    space starts again with a full bucket."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> Decision:
        now = self.clock()
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst, now)
        allowed = bucket.take(now)
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(bucket.tokens),
            reset_s=math.ceil(bucket.time_to_full(now)),
            retry_after_s=0 if allowed else max(1, math.ceil(bucket.wait_time(now))),
        )


async def _answer(exc: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the problem the error table gives, here rather than by raising, so that the
    answer passes through the outer middleware (request id, access log) like any other."""
    request: Request[Any, Any, Any] = Request(scope)
    response = domain_error_handler(request, exc)
    await response.to_asgi_response(None, request)(scope, receive, send)


class HeaderSizeLimit:
    """431 when the request's header fields (each ``name: value`` line with its CRLF) add up to
    more than ``max_bytes``. uvicorn's own parser limits come later or not at all (httptools has
    none; h11's is 16 KiB and answers a bare 400), so this is the limit clients meet."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                detail = f"the request's header fields take {size} bytes; the service accepts at most {self.max_bytes}"
                await _answer(HeadersTooLarge(detail), scope, receive, send)
                return
        await self.app(scope, receive, send)


class CredentialRateLimit:
    """Runs after authentication and limits by ``Principal.id``; requests without a principal
    (health, the OpenAPI document) pass untouched."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("user")
        if scope["type"] != "http" or not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        decision = self.buckets.take(principal.id)
        headers = decision.headers()
        if not decision.allowed:
            detail = f"this credential's rate limit is used up; retry in {decision.retry_after_s} s"
            await _answer(RateLimited(detail, retry_after=decision.retry_after_s, headers=headers), scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


_TYPED_PARAM = re.compile(r"\{(\w+):[^}]*\}")


async def reject_unknown_query_params(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An app-wide guard: on /v1, every query parameter must be one the OpenAPI document names for
    the operation (a misspelt filter would otherwise be ignored and return everything). async
    although it never awaits: Litestar runs a plain function guard in a worker thread."""
    if not connection.scope["path"].startswith("/v1/") or not connection.query_params:
        return
    template = _TYPED_PARAM.sub(r"{\1}", connection.scope.get("path_template", "")).rstrip("/") or "/"
    path_item = (connection.app.openapi_schema.paths or {}).get(template)
    operation = getattr(path_item, connection.scope["method"].lower(), None) if path_item else None
    documented = {p.name for p in (operation.parameters or []) if getattr(p, "param_in", None) == "query"} if operation else set()
    unknown = sorted(set(connection.query_params) - documented)
    if unknown:
        raise ValidationException(
            detail="unknown query parameter",
            extra=[{"key": name, "message": "unknown query parameter"} for name in unknown],
        )
