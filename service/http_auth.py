"""Bearer authentication (API keys, and JWTs when TENANTS_JWT_JWKS_URL is set) and per-route scope guards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.apikeys import hash_key
from service.jwt_auth import looks_like_jwt
from service.principal import Principal

# last_used_at is written at most this often per key, so reads stay free of writes.
TOUCH_EVERY = timedelta(seconds=60)


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("send Authorization: Bearer <api key>")
        container = connection.app.state.container
        if container.jwt is not None and looks_like_jwt(token.strip()):
            principal = await container.jwt.verify(token.strip())
            return AuthenticationResult(user=principal, auth=principal.id)
        record = await container.api_keys.find_by_hash(hash_key(token.strip()))
        now = container.clock.now()
        if record is None or record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
            raise NotAuthorizedException("unknown, revoked or expired API key")
        if record.last_used_at is None or now - record.last_used_at > TOUCH_EVERY:
            await container.api_keys.touch(record.id, now)
        principal = Principal(id=record.id, kind="api_key", scopes=frozenset(record.scopes), name=record.name)
        return AuthenticationResult(user=principal, auth=record.id)


def require_scope(scope: str) -> Any:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or scope not in principal.scopes:
            raise PermissionDeniedException(f"this route needs the {scope!r} scope")

    return guard
