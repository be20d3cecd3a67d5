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
        digest = hash_key(token.strip())
        now = container.clock.now()
        # A key verified within TENANTS_API_KEY_CACHE_S needs no registry read (service/key_cache.py).
        cache = getattr(container, "key_cache", None)
        if cache is not None:
            record = await cache.lookup(digest, lambda: container.api_keys.find_by_hash(digest), now)
        else:
            record = await container.api_keys.find_by_hash(digest)
        if record is None or record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
            raise NotAuthorizedException("unknown, revoked or expired API key")
        if record.last_used_at is None or now - record.last_used_at > TOUCH_EVERY:
            if cache is not None:
                cache.used(digest, now)  # first: the requests in flight meanwhile need not write too
            await container.api_keys.touch(record.id, now)
        principal = Principal(id=record.id, kind="api_key", scopes=frozenset(record.scopes), name=record.name)
        return AuthenticationResult(user=principal, auth=record.id)


def require_scope(scope: str) -> Any:
    # async although it never awaits: Litestar runs a plain function guard in a worker thread.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or scope not in principal.scopes:
            raise PermissionDeniedException(f"this route needs the {scope!r} scope")

    return guard
