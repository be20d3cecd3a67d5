"""Idempotency-Key for the routes that change state (draft-ietf-httpapi-idempotency-key-header,
with Stripe's semantics).

A key belongs to the API key that sent it. The first request with a key runs and its response is
kept (``TENANTS_IDEMPOTENCY_TTL_HOURS``, >= 24 h); the same key with the same request (method,
path and canonical JSON body) gets that response again, byte for byte, with
``Idempotent-Replayed: true``; with a different request, 422; while the first is still running,
409 with ``Retry-After``.

Stored: 2xx and 4xx answers (404 and 409 included: they are the outcome of the request). Not
stored, so that the client's retry with the same key runs again: 5xx (the registry or AWS were
down) and 422 (the request was not understood; the client fixes it and may reuse the key). 401,
403 and 429 come from the middleware and guards, before a key is looked at.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.params import HeaderParameter
from litestar.serialization import get_serializer
from litestar.utils.helpers import get_enum_string_value

from adapters.registry.idempotency import KEY_MAX_LENGTH, IdempotencyStore, InFlight, Mismatch, Replay, Started
from domain.errors import DomainError, InvalidInput
from domain.ports import Clock
from service.errors import IDEMPOTENCY_KEY, IdempotencyKeyInProgress, IdempotencyKeyMismatch, domain_error_handler

if TYPE_CHECKING:
    from service.settings import Settings
    from service.wiring import Container

log = structlog.get_logger("tenants.idempotency")

REPLAYED = "Idempotent-Replayed"
KEY_PATTERN = rf"^[\x21-\x7e]{{1,{KEY_MAX_LENGTH}}}$"  # visible ASCII: no spaces, no controls
_KEY_RE = re.compile(KEY_PATTERN)
# What a replay repeats besides status and body; X-Request-ID stays the replaying request's own.
_KEPT_HEADERS = ("content-type", "location", "preference-applied")
# Past the longest a request can run (Prefer: wait=N is capped at max_wait_s), an in_flight entry
# is a request that died; its key is then free again rather than locked until it expires.
_IN_FLIGHT_MARGIN = timedelta(minutes=2)
PURGE_EVERY_S = 3600.0

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_KEY,
        required=False,
        description=(
            "Makes the request safe to repeat (draft-ietf-httpapi-idempotency-key-header): 1-255 visible "
            "ASCII characters, unique per operation (a UUID), scoped to your API key. The same key with the "
            "same request replays the first response (`Idempotent-Replayed: true`) for at least 24 hours; "
            "with a different request it is 422; while the first request is still running, 409."
        ),
        # Documentation of the check in ``parse_key`` (which answers 422 naming the header).
        schema_extra={"minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
    ),
]

REPLAYED_HEADER = ResponseHeader(
    name=REPLAYED,
    documentation_only=True,
    description="`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
)


def parse_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY_RE.fullmatch(value):
        raise InvalidInput(IDEMPOTENCY_KEY, f"must be 1 to {KEY_MAX_LENGTH} visible ASCII characters")
    return value


def _slow_hashed_secrets(value: Any) -> Any:
    """The body with every ``client_secret`` (a tenant identity provider's) replaced by its scrypt
    hash: the fingerprint is stored, and a fast hash of a body holding a secret would let whoever
    reads the registry test guesses of the secret cheaply. A different secret still makes a
    different fingerprint (same key, other body: 422)."""
    if isinstance(value, dict):
        return {
            key: (
                "scrypt:" + hashlib.scrypt(item.encode(), salt=b"tenants/idempotency/client_secret", n=2**14, r=8, p=1).hex()
                if key == "client_secret" and isinstance(item, str)
                else _slow_hashed_secrets(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_slow_hashed_secrets(item) for item in value]
    return value


async def fingerprint(request: Request[Any, Any, Any]) -> str:
    """SHA-256 of method, path and the body as canonical JSON (keys sorted, no spaces), so that
    the same JSON sent with other spacing or key order is the same request. Headers (``Prefer``
    included) are not part of it."""
    raw = await request.body()
    body = b""
    if raw:
        try:
            parsed = _slow_hashed_secrets(json.loads(raw))
            body = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except ValueError:
            body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def is_stored(status: int) -> bool:
    return 200 <= status < 300 or (400 <= status < 500 and status not in (401, 403, 422, 429))


def in_flight_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.max_wait_s) + _IN_FLIGHT_MARGIN


@dataclass(frozen=True, slots=True)
class _Rendered:
    status: int
    headers: dict[str, str]
    body: bytes

    def kept_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items() if name.lower() in _KEPT_HEADERS}


def _render(request: Request[Any, Any, Any], response: Response[Any]) -> _Rendered:
    """The response as the client receives it: the same encoder as Litestar's, run once, so the
    first answer and its replays are the same bytes."""
    handler = request.route_handler
    media_type = get_enum_string_value(response.media_type or handler.media_type or MediaType.JSON)
    encoders = {**handler.resolve_type_encoders(), **(response.response_type_encoders or {})}
    body = response.render(response.content, media_type, get_serializer(encoders))
    status = response.status_code or handler.status_code
    headers = {str(k): str(v) for k, v in response.headers.items()}
    headers["Content-Type"] = media_type
    return _Rendered(status, headers, body)


def _send(rendered: _Rendered, headers: dict[str, str]) -> Response[Any]:
    content_type = headers.pop("Content-Type", MediaType.JSON.value)
    return Response(rendered.body, status_code=rendered.status, media_type=content_type, headers=headers)


async def idempotent(
    request: Request[Any, Any, Any], key: str | None, operation: Callable[[], Awaitable[Response[Any]]]
) -> Response[Any]:
    """Run ``operation`` (a route's work) under the request's Idempotency-Key, if it sent one."""
    key = parse_key(key)
    if key is None:
        return await operation()
    container: Container = request.app.state.container
    store = container.idempotency
    assert store is not None
    api_key_id: str = request.user.id
    settings = container.settings
    begun = await store.begin(
        api_key_id,
        key,
        await fingerprint(request),
        container.clock.now(),
        timedelta(hours=settings.idempotency_ttl_hours),
        in_flight_timeout=in_flight_timeout(settings),
    )
    if isinstance(begun, Replay):
        structlog.contextvars.bind_contextvars(idempotent_replay=True)
        replay = _Rendered(begun.status, dict(begun.headers), begun.body.encode())
        return _send(replay, {**replay.headers, REPLAYED: "true"})
    if isinstance(begun, Mismatch):
        raise IdempotencyKeyMismatch("this Idempotency-Key was already used with a different request (method, path or body)")
    if isinstance(begun, InFlight):
        raise IdempotencyKeyInProgress("the first request with this Idempotency-Key is still in progress; retry shortly")
    assert isinstance(begun, Started)

    try:
        try:
            response = await operation()
        except DomainError as exc:
            response = domain_error_handler(request, exc)
        rendered = _render(request, response)
    except BaseException:  # including cancellation: the request stored nothing
        await _abandon(store, api_key_id, key, begun)
        raise
    if is_stored(rendered.status):
        try:
            await store.finish(
                api_key_id, key, rendered.status, rendered.kept_headers(), rendered.body.decode(), started_at=begun.started_at
            )
        # The operation happened, so its answer goes out whatever became of the entry: that stays
        # in_flight until in_flight_timeout, after which a retry with this key runs again (the
        # routes are themselves safe to repeat).
        except DomainError as exc:
            log.warning("idempotency_finish_failed", error=exc.code)
        except Exception:
            log.exception("idempotency_finish_failed")
    else:
        await _abandon(store, api_key_id, key, begun)
    return _send(rendered, dict(rendered.headers))


async def _abandon(store: IdempotencyStore, api_key_id: str, key: str, begun: Started) -> None:
    try:
        await store.abandon(api_key_id, key, started_at=begun.started_at)
    except Exception as exc:  # the request's own outcome (often the same outage) matters more
        log.warning("idempotency_abandon_failed", error=getattr(exc, "code", type(exc).__name__))


class ExpiredKeyPurger:
    """Deletes expired Idempotency-Key entries: once at start (a service restarted more often
    than hourly still purges) and then every ``every_s`` seconds. Every replica may run one; the
    DELETE is the same whoever runs it."""

    def __init__(self, store: IdempotencyStore, clock: Clock, every_s: float = PURGE_EVERY_S) -> None:
        self._store = store
        self._clock = clock
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="idempotency-purge")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def purge_once(self) -> int:
        purged = await self._store.purge_expired(self._clock.now())
        if purged:
            log.info("idempotency_keys_purged", count=purged)
        return purged

    async def _run(self) -> None:
        while True:
            try:
                await self.purge_once()
            except DomainError as exc:  # registry unavailable: try again next round
                log.warning("idempotency_purge_failed", error=exc.code)
            except Exception:
                log.exception("idempotency_purge_failed")
            await asyncio.sleep(self._every_s)
