"""`/v1/keys`: API keys managed over HTTP, for holders of the `keys:admin` scope.

A new key is in the body of the 201 answer to its POST and nowhere else, ever: only its SHA-256
and a short public prefix are stored. POST takes no `Idempotency-Key` on purpose, since a stored
answer for replay would be the key itself at rest. A caller grants only scopes it holds, so
`keys:admin` alone cannot mint a key stronger than itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Body, FromPath
from msgspec import Meta

from adapters.registry.api_keys import ApiKeyRecord
from domain.errors import InvalidInput
from service import openapi_examples as ex
from service.apikeys import ExpiryError, Scope, check_expiry, issue_key, key_out
from service.errors import ApiKeyNotFound, ScopeNotHeld
from service.http_auth import require_scope
from service.openapi_docs import error_responses, ok_response
from service.principal import Principal
from service.wiring import Container

log = structlog.get_logger("tenants.keys")


class CreateApiKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=200,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Who or what the key is for; shown in listings.",
            examples=["billing-backend"],
        ),
    ]
    scopes: Annotated[
        list[Scope],
        Meta(min_length=1, max_length=8, description="At least one; only scopes the calling key holds itself."),
    ]
    expires_at: Annotated[
        datetime,
        Meta(tz=True, description="RFC 3339 time with its offset, in the future. Omitted: the key does not expire."),
    ] | None = None


class ApiKeyOut(msgspec.Struct):
    id: str
    name: str
    prefix: Annotated[
        str,
        Meta(
            description="`tpk_` and the next 6 characters of a key the service made: not secret, enough to recognise "
            "it. `(set by operator)` for an operator's bootstrap key not starting with `tpk_`: none of it is shown."
        ),
    ]
    scopes: list[str]
    status: Annotated[str, Meta(description="active | expired | revoked")]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: Annotated[str | None, Meta(description="Updated at most once a minute.")]


class ApiKeyCreated(ApiKeyOut):
    key: Annotated[str, Meta(description="The key itself. Shown this once: store it now; it cannot be read again.")]


class ApiKeyList(msgspec.Struct):
    items: list[ApiKeyOut]


_KEY_DESCR = {
    403: "The credential lacks the `keys:admin` scope.",
    404: "No API key with this id.",
    422: "An unknown query parameter; `errors` names it.",
}
_CREATE_DESCR = {
    403: "The credential lacks `keys:admin`, or a scope it asks to grant.",
    422: "Invalid body (`errors` names each field): an unknown field or scope, no scope, an expiry "
    "without offset or not in the future; or an unknown query parameter.",
}


def _container(request: Request[Any, Any, Any]) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def _record(container: Container, key_id: str) -> ApiKeyRecord:
    assert container.api_keys is not None
    record = await container.api_keys.get(key_id)
    if record is None:
        raise ApiKeyNotFound(f"no API key with id {key_id!r}")
    return record


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    security = [{"bearer": []}]
    guards = [require_scope("keys:admin")]

    @post(
        "/",
        summary="Create an API key",
        description=(
            "Answers 201 with the new key in `key`: the only time it is shown (store it now). Only its "
            "SHA-256 and public `prefix` are kept. The calling key can grant only scopes it holds "
            "itself (403 otherwise). No `Idempotency-Key`: a replayable answer would store the key."
        ),
        status_code=201,
        responses={
            **ok_response(201, ApiKeyCreated, "The new key, in `key`: shown this once.", created=ex.KEY_CREATED),
            **error_responses(400, 401, 403, 413, 415, 422, 503, descriptions=_CREATE_DESCR),
        },
    )
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[
            CreateApiKey, Body(examples=[ex.example("a key for a SaaS backend", ex.CREATE_KEY)])
        ],
    ) -> Response[ApiKeyCreated]:
        container = _container(request)
        assert container.api_keys is not None
        caller: Principal = request.user
        not_held = sorted(set(data.scopes) - caller.scopes)
        if not_held:
            raise ScopeNotHeld(f"the calling key cannot grant scopes it does not hold: {', '.join(not_held)}")
        now = container.clock.now()
        if data.expires_at is not None:
            try:
                check_expiry(data.expires_at, now)
            except ExpiryError as exc:
                raise InvalidInput("expires_at", str(exc)) from None
        issued = issue_key(data.name, data.scopes, now, data.expires_at)
        await container.api_keys.add(issued.record)
        log.info("key_created", key_id=issued.record.id, scopes=list(issued.record.scopes), by=caller.id)
        body = ApiKeyCreated(**key_out(issued.record, now), key=issued.key)
        # The body holds a secret: no cache along the way may keep it (RFC 9111, 5.2.2.5).
        headers = {"Location": f"/v1/keys/{issued.record.id}", "Cache-Control": "no-store"}
        return Response(body, status_code=201, headers=headers)

    @get(
        "/",
        summary="List API keys",
        description="Every key, including revoked and expired ones, oldest first. Never the key or its hash.",
        responses={**ok_response(200, ApiKeyList, "Every key.", keys=ex.KEY_LIST), **error_responses(401, 403, 503, descriptions=_KEY_DESCR)},
    )
    async def list_keys(self, request: Request[Any, Any, Any]) -> ApiKeyList:
        container = _container(request)
        assert container.api_keys is not None
        now = container.clock.now()
        return ApiKeyList(items=[ApiKeyOut(**key_out(r, now)) for r in await container.api_keys.list()])

    @get(
        "/{key_id:str}",
        summary="Get an API key",
        description="One key's name, prefix, scopes and dates. Never the key or its hash.",
        responses={**ok_response(200, ApiKeyOut, "The key.", key=ex.KEY), **error_responses(400, 401, 403, 404, 503, descriptions=_KEY_DESCR)},
    )
    async def get_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> ApiKeyOut:
        container = _container(request)
        return ApiKeyOut(**key_out(await _record(container, key_id), container.clock.now()))

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key",
        description=(
            "From now on the key answers 401. The record stays, with `revoked_at`. Revoking a revoked "
            "key changes nothing and answers 200 again."
        ),
        status_code=200,
        responses={
            **ok_response(200, ApiKeyOut, "The key, now revoked.", revoked=ex.KEY_REVOKED),
            **error_responses(400, 401, 403, 404, 415, 503, descriptions=_KEY_DESCR),
        },
    )
    async def revoke_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> ApiKeyOut:
        container = _container(request)
        assert container.api_keys is not None
        now = container.clock.now()
        if await container.api_keys.revoke(key_id, now):
            log.info("key_revoked", key_id=key_id, by=request.user.id)
        if container.key_cache is not None:
            container.key_cache.forget(key_id)  # refused from the next request on, in this process
        return ApiKeyOut(**key_out(await _record(container, key_id), now))
