"""The one table that turns errors into HTTP statuses, as RFC 9457 problem+json bodies.

Infrastructure errors never reach a client as ``str(exc)``; unexpected ones become a bare 500
and a log line with the request id.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)

from domain.errors import (
    ApiKeyConflict,
    CloudError,
    DomainError,
    InvalidInput,
    RegistryUnavailable,
    TenantConflict,
    TenantNotFound,
    UnknownTier,
)
from service.schemas import Problem

log = structlog.get_logger("tenants.http")
IDEMPOTENCY_KEY = "Idempotency-Key"
PROBLEM = "application/problem+json"
_TYPE_BASE = "https://tenant-provisioner.dev/problems/"


class IdempotencyKeyMismatch(DomainError):
    """The Idempotency-Key was first used for a different request (method, path or body)."""

    code = "idempotency_key_mismatch"


class IdempotencyKeyInProgress(DomainError):
    """The first request with this Idempotency-Key is still executing."""

    code = "idempotency_key_in_progress"


class ApiKeyNotFound(DomainError):
    code = "api_key_not_found"


class ScopeNotHeld(DomainError):
    """A key asked to grant a scope it does not hold itself (no escalation through keys:admin)."""

    code = "scope_not_held"


class TokenKeysUnavailable(DomainError):
    """A well-formed JWT cannot be checked because its issuer's JWKS cannot be fetched: the
    service's outage, not a bad credential, so 503 + Retry-After rather than 401."""

    code = "token_keys_unavailable"


class RateLimited(DomainError):
    """The credential used up its token bucket (service/limits.py)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers


class HeadersTooLarge(DomainError):
    code = "headers_too_large"


class BodyRejected(DomainError):
    """The body is not one the service reads (HTTP 400); ``field`` is ``body`` or the path of a
    duplicated key."""

    code = "malformed_json"

    def __init__(self, message: str, *, code: str, field: str = "body", reason: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field
        self.reason = reason or message  # errors[].message


class UnsupportedMediaType(DomainError):
    """The body's Content-Type is not one the route reads (HTTP 415)."""

    code = "unsupported_media_type"

    def __init__(self, message: str, *, method: str, accepted: tuple[str, ...]) -> None:
        super().__init__(message)
        listed = ", ".join(accepted)
        self.headers = {"Accept": listed}
        if method in ("POST", "PATCH"):
            self.headers[f"Accept-{method.title()}"] = listed


# error -> (status, problem type, title). The two idempotency statuses are the ones of
# draft-ietf-httpapi-idempotency-key-header ("Error Scenarios"): 422 for a key reused with another
# request, 409 while the key's first request is still being processed.
STATUS_TABLE: list[tuple[type[DomainError], int, str, str]] = [
    (IdempotencyKeyMismatch, 422, "idempotency-key-mismatch", "Idempotency-Key reused"),
    (IdempotencyKeyInProgress, 409, "idempotency-key-in-progress", "Request in progress"),
    (TenantNotFound, 404, "not-found", "Tenant not found"),
    (ApiKeyNotFound, 404, "not-found", "API key not found"),
    (ScopeNotHeld, 403, "forbidden", "Forbidden"),
    (BodyRejected, 400, "malformed-body", "Malformed request body"),
    # RFC 9110, 15.5.16: 415 names the accepted types in Accept (and Accept-Post / Accept-Patch).
    (UnsupportedMediaType, 415, "unsupported-media-type", "Unsupported media type"),
    (TenantConflict, 409, "conflict", "Conflict with the tenant's state"),
    (ApiKeyConflict, 409, "conflict", "API key already registered"),
    (UnknownTier, 422, "validation", "Unknown tier"),
    (InvalidInput, 422, "validation", "Invalid request"),
    (RegistryUnavailable, 503, "unavailable", "Registry unavailable"),
    (TokenKeysUnavailable, 503, "unavailable", "Token keys unavailable"),
    # RFC 6585: 429 with Retry-After; 431 for header fields too large.
    (RateLimited, 429, "rate-limited", "Too many requests"),
    (HeadersTooLarge, 431, "headers-too-large", "Request header fields too large"),
    (CloudError, 502, "aws-error", "AWS request failed"),
]


def problem(status: int, kind: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[Problem]:
    body = Problem(type=_TYPE_BASE + kind, title=title, status=status, detail=detail, **extra)
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers or {})


def domain_error_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    for cls, status, kind, title in STATUS_TABLE:
        if isinstance(exc, cls):
            headers = {"Retry-After": "5"} if status == 503 else None
            if isinstance(exc, IdempotencyKeyInProgress):
                headers = {"Retry-After": "1"}
            if isinstance(exc, RateLimited):
                headers = {**exc.headers, "Retry-After": str(exc.retry_after)}
            if isinstance(exc, UnsupportedMediaType):
                headers = exc.headers
            extra: dict[str, Any] = {"code": exc.code}
            if isinstance(exc, TenantConflict):
                extra["tenant_status"] = exc.status
            if isinstance(exc, InvalidInput):
                extra["errors"] = [{"field": exc.field, "message": exc.message}]
            if isinstance(exc, BodyRejected):
                extra["errors"] = [{"field": exc.field, "message": exc.reason}]
            if isinstance(exc, UnknownTier):
                extra["errors"] = [{"field": "tier", "message": exc.message}]
            if isinstance(exc, IdempotencyKeyMismatch):
                extra["errors"] = [{"field": IDEMPOTENCY_KEY, "message": exc.message}]
            return problem(status, kind, title, exc.message, headers, **extra)
    log.error("unmapped_domain_error", code=exc.code)
    return problem(500, "internal", "Internal error", "an unexpected error occurred")


_FIELD_RE = re.compile(r"`\$\.([A-Za-z0-9_.\[\]]+)`")
_NAMED_FIELD_RE = re.compile(r"(?:unknown|required) field `([^`]+)`")


def _field_of(item: dict[str, Any]) -> str:
    key = item.get("key")
    message = str(item.get("message", ""))
    if key and key not in ("body", "data"):
        return str(key)
    for regex in (_NAMED_FIELD_RE, _FIELD_RE):
        match = regex.search(message)
        if match:
            return match.group(1)
    return "body"


def validation_handler(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    raw = exc.extra if isinstance(exc.extra, list) else [{"message": exc.detail}]
    errors = []
    for item in raw:
        item = item if isinstance(item, dict) else {"message": str(item)}
        errors.append({"field": _field_of(item), "message": str(item.get("message", exc.detail))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return problem(422, "validation", "Invalid request", detail, errors=errors)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers["WWW-Authenticate"] = 'Bearer realm="tenants"'
        return problem(401, "unauthorized", "Unauthorized", exc.detail or "a valid API key is required", headers)
    if isinstance(exc, PermissionDeniedException):
        return problem(403, "forbidden", "Forbidden", exc.detail or "the API key lacks the scope this route needs")
    if status >= 500:
        log.error("http_error", status=status, path=request.url.path)
        return problem(status, "internal", "Internal error", "an unexpected error occurred", headers)
    title = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(status, "Bad request")
    detail = exc.detail if exc.detail and status != 413 else title
    if status == 413:
        detail = "the request body is larger than the service accepts"
    return problem(status, "http-" + str(status), title, detail, headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem(500, "internal", "Internal error", "an unexpected error occurred")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}


def status_of(exc: BaseException) -> int:
    """The status the handlers above answer ``exc`` with (for the access log)."""
    if isinstance(exc, HTTPException):
        return 422 if isinstance(exc, ValidationException) else exc.status_code
    if isinstance(exc, DomainError):
        for cls, status, _, _ in STATUS_TABLE:
            if isinstance(exc, cls):
                return status
    return 500
