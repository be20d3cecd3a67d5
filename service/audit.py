"""The audit trail's HTTP side: every state-changing /v1 request is recorded, and a tenant's
events are served at ``GET /v1/tenants/{tenant_id}/events``.

``AuditMiddleware`` sits between the request-id middleware and authentication. It sees the
response the client is about to get (handler errors, validation errors, guards' 403s and
Idempotency-Key replays included: they are all rendered inside it) and writes one event in a
transaction of its own *before* passing the response on, so a client that reads the trail right
after its request finds the request in it.

Not recorded: 401s (no principal to name, and recording them would let anyone without a key
write to the registry), 429s (a throttled credential must not buy a registry write per refused
request) and 503s (the registry is what is unavailable: the write would wait for the same
timeout and fail). All three are in the access log with their request id.

An audit write that fails (registry unavailable) is logged as a warning and the response goes out
unchanged: the operation already happened or was already refused, and turning its answer into a
500 would make the client retry something that succeeded. The price is a request missing from
the trail while the registry was down, which the access log still holds.
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.audit import AuditEvent, EventPage
from domain.errors import DomainError
from domain.naming import TENANT_ID_PATTERN
from domain.usecases import ListTenantEvents
from service.bodies import checked_json
from service.cursors import decode_cursor, encode_cursor
from service.idempotency import REPLAYED
from service.principal import Principal
from service.schemas import AuditEventOut, AuditEventPage

log = structlog.get_logger("tenants.audit")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_RECORDED = frozenset({401, 429, 503})
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)
_SAFE_VALUE_RE = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
# Only a response body this small is looked at (for a problem's ``code``). The request body is not
# read here: the tenant_id of POST /v1/tenants comes from the body service/bodies.py decoded.
_PEEK_BYTES = 64 * 1024


def _outcome(status: int) -> str:
    if status == 202:
        return "accepted"
    if status < 400:
        return "ok"
    return "refused" if status < 500 else "error"


def action_of(scope: Scope) -> str:
    """``tenant.create``, ``tenant.delete``, ``tenant.retry``, ``key.revoke``...: from the route
    (``opt={"audit_action": ...}`` on a handler names it outright)."""
    handler = scope.get("route_handler")
    named = getattr(handler, "opt", {}).get("audit_action") if handler is not None else None
    if named:
        return str(named)
    segments = [s for s in scope.get("path_template", scope["path"]).strip("/").split("/") if s]
    resource = segments[1] if len(segments) > 1 else "api"
    resource = resource[:-1] if resource.endswith("s") else resource
    last = segments[-1] if segments else ""
    if len(segments) > 2 and not last.startswith("{"):
        verb = last
    else:
        verb = {"POST": "create", "DELETE": "delete"}.get(scope["method"], "update")
    return f"{resource}.{verb}"[:100]


def _tenant_id_of(scope: Scope) -> str | None:
    candidate = scope.get("path_params", {}).get("tenant_id")
    if candidate is None and scope.get("path_template") == "/v1/tenants":
        data = checked_json(scope)  # only a body service/bodies.py accepted: never too deep, no key twice
        candidate = data.get("tenant_id") if isinstance(data, dict) else None
    return candidate if isinstance(candidate, str) and _TENANT_ID_RE.fullmatch(candidate) else None


def _problem_code(headers: dict[bytes, bytes], body: bytes) -> str | None:
    if not headers.get(b"content-type", b"").startswith(b"application/problem+json"):
        return None
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) and _SAFE_VALUE_RE.fullmatch(code) else None


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        response_body = bytearray()

        async def hold_until_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if message["type"] == "http.response.body" and held:
                held.append(message)
                if held[0]["status"] >= 400 and len(response_body) < _PEEK_BYTES:  # a problem's code
                    response_body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await self._record(scope, held[0], bytes(response_body))
                for m in held:
                    await send(m)
                held.clear()
                return
            await send(message)

        await self.app(scope, receive, hold_until_recorded)

    async def _record(self, scope: Scope, start: Message, response_body: bytes) -> None:
        status: int = start["status"]
        principal = scope.get("user")
        if status in NOT_RECORDED or not isinstance(principal, Principal) or scope.get("route_handler") is None:
            return
        container = scope["app"].state.container
        record = getattr(container, "record_event", None)
        if record is None:
            return
        headers = {bytes(k).lower(): bytes(v) for k, v in start.get("headers", [])}
        detail: dict[str, Any] = {"status": status}
        if headers.get(REPLAYED.lower().encode()) == b"true":
            detail["replayed"] = True
        code = _problem_code(headers, response_body)
        if code:
            detail["code"] = code
        for name, value in scope.get("path_params", {}).items():  # e.g. the key id of a key route
            if name != "tenant_id" and isinstance(value, str) and _SAFE_VALUE_RE.fullmatch(value):
                detail[name] = value
        event = AuditEvent(
            tenant_id=_tenant_id_of(scope),
            at=container.clock.now(),
            actor=principal.id,
            action=action_of(scope),
            outcome=_outcome(status),
            detail=detail,
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
        try:
            await record(event)
        except DomainError as exc:
            log.warning("audit_write_failed", action=event.action, status=status, error=exc.code)
        except Exception as exc:
            log.warning("audit_write_failed", action=event.action, status=status, error=type(exc).__name__)


# --- GET /v1/tenants/{tenant_id}/events --------------------------------------------------------


def _valid_event_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def event_out(event: AuditEvent) -> AuditEventOut:
    assert event.id is not None and event.tenant_id is not None
    return AuditEventOut(
        id=event.id,
        tenant_id=event.tenant_id,
        at=event.at.isoformat(),
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        detail=dict(event.detail),
        request_id=event.request_id,
    )


async def events_page(
    events: ListTenantEvents, tenant_id: str, *, limit: int, cursor: str | None
) -> AuditEventPage:
    page: EventPage = await events(tenant_id, limit=limit, after_id=decode_cursor(cursor, "after_id", _valid_event_id) if cursor else None)
    return AuditEventPage(
        items=[event_out(e) for e in page.items],
        next_cursor=encode_cursor("after_id", page.next_after_id) if page.next_after_id is not None else None,
    )
