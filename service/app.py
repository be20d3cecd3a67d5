"""The Litestar application: routes of API.md, wired through ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Litestar, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Body, FromPath, HeaderParameter, QueryParameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.tenant import SettingsStatus, Tenant, TenantSpec, TenantStatus
from domain.tenant_settings import parse_settings
from domain.usecases import Outcome
from service import openapi_examples as ex
from service.audit import AuditMiddleware, events_page
from service.bodies import check_request_body
from service.cursors import decode_cursor, encode_cursor
from service.errors import EXCEPTION_HANDLERS, problem, status_of
from service.http_auth import ApiKeyAuthentication, require_scope
from service.idempotency import REPLAYED_HEADER, IdempotencyKeyHeader, idempotent
from service.limits import CredentialRateLimit, HeaderSizeLimit, TokenBuckets, reject_unknown_query_params
from service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service.openapi_docs import error_responses, ok_response
from service.openapi_strict import StrictStructSchemaPlugin
from service.options import AllowFromRoutes
from service.schemas import AuditEventPage, CreateTenant, PatchTenant, TenantOut, TenantPage, TierOut, tenant_out
from service.settings import Settings, load_settings
from service.wiring import Container

log = structlog.get_logger("tenants.http")
API_VERSION = "1.0.0"
_WAIT_RE = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.IGNORECASE)
_TERMINAL = {TenantStatus.ACTIVE, TenantStatus.FAILED, TenantStatus.DELETED}


def _tenant(status: int, description: str, **examples: Any) -> dict[int, ResponseSpec]:
    """A tenant answer; the examples default to an active tenant."""
    return ok_response(status, TenantOut, description, **(examples or {"active": ex.TENANT_ACTIVE}))


PreferHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Prefer",
        required=False,
        description=(
            "RFC 7240. `wait=N`: answer once the operation has finished, waiting at most N seconds "
            "(capped by the server's TENANTS_MAX_WAIT_S); if it has not finished by then, the answer "
            "is the usual 202. A finished wait is confirmed by `Preference-Applied: wait=N`."
        ),
        examples=[ex.example("wait up to 30 s", "wait=30")],
    ),
]
CreateTenantBody = Annotated[
    CreateTenant,
    Body(
        description="The tenant to onboard.",
        examples=[ex.example("standard tenant with an admin user", ex.CREATE_TENANT)],
    ),
]


# Routes without a body or tenant spec meet 409 and 422 only through their Idempotency-Key.
_KEY_ONLY_DESCRIPTIONS = {
    409: "The first request with this `Idempotency-Key` is still in progress; retry after `Retry-After` seconds.",
    422: "`Idempotency-Key` malformed or already used with a different request, or an unknown query "
    "parameter; `errors` names it.",
}


def _name_tenant(tenant_id: str) -> None:
    """The access-log line of this request then names the tenant too."""
    structlog.contextvars.bind_contextvars(tenant_id=tenant_id)


def _container(request: Request[Any, Any, Any], tenant_id: str | None = None) -> Container:
    if tenant_id is not None:
        _name_tenant(tenant_id)
    return request.app.state.container  # type: ignore[no-any-return]


def _prefer_wait(prefer: str | None, settings: Settings) -> float | None:
    match = _WAIT_RE.search(prefer or "")
    return min(float(match.group(1)), settings.max_wait_s) if match else None


def _reached(until: set[TenantStatus]) -> Callable[[Tenant], bool]:
    return lambda tenant: tenant.status in until


def _settings_settled(tenant: Tenant) -> bool:
    """A PATCH's change is applied or failed (or the tenant left `active`, e.g. deleted meanwhile)."""
    return tenant.settings_status != SettingsStatus.PENDING or tenant.status != TenantStatus.ACTIVE


async def _wait_for(container: Container, tenant_id: str, done: Callable[[Tenant], bool], seconds: float) -> Tenant:
    """The one ``Prefer: wait`` mechanism: read the tenant again as soon as this process's worker
    ends a run of it, provisioning, teardown or a settings change (service/waiters.py), and every
    50 ms for a worker in another process; return once ``done`` holds or time is up."""
    assert container.get_tenant is not None
    deadline = time.monotonic() + seconds
    with container.waiters.watch(tenant_id) as changed:
        while True:
            changed.clear()  # before the read: a run ending after it sets it again
            tenant = await container.get_tenant(tenant_id)
            remaining = deadline - time.monotonic()
            if done(tenant) or remaining <= 0:
                return tenant
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))


def _tenant_response(tenant: Tenant, status: int, headers: dict[str, str] | None = None) -> Response[TenantOut]:
    return Response(tenant_out(tenant), status_code=status, headers=headers or {})


async def _started(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    until: set[TenantStatus],
    done_status: int,
    headers: dict[str, str],
    prefer: str | None,
) -> Response[TenantOut]:
    """An operation was queued: 202, or with ``Prefer: wait=N`` (RFC 7240) the tenant once it
    reaches ``until`` within N seconds, answered with ``done_status``."""
    container = _container(request)
    container.wake_worker()
    wait = _prefer_wait(prefer, container.settings)
    if not wait:
        return _tenant_response(tenant, 202, headers)
    tenant = await _wait_for(container, tenant.tenant_id, _reached(until), wait)
    if tenant.status in until:
        return _tenant_response(tenant, done_status, {**headers, "Preference-Applied": f"wait={int(wait)}"})
    return _tenant_response(tenant, 202, headers)


async def _create(request: Request[Any, Any, Any], data: CreateTenant, prefer: str | None) -> Response[TenantOut]:
    container = _container(request, data.tenant_id)
    assert container.onboard is not None
    parsed = parse_settings(data.settings_json())
    outcome: Outcome = await container.onboard(
        TenantSpec(
            tenant_id=data.tenant_id,
            tier=data.tier,
            display_name=data.display_name,
            admin_email=data.admin_email,
            settings=parsed.settings,
        ),
        parsed.secrets,
    )
    headers = {"Location": f"/v1/tenants/{data.tenant_id}"}
    if not outcome.changed:
        return _tenant_response(outcome.tenant, 200, headers)
    return await _started(request, outcome.tenant, _TERMINAL, 201, headers, prefer)


async def _patch(request: Request[Any, Any, Any], tenant_id: str, data: PatchTenant, prefer: str | None) -> Response[TenantOut]:
    container = _container(request, tenant_id)
    assert container.update_tenant is not None and container.get_tenant is not None
    outcome = await container.update_tenant(tenant_id, msgspec.to_builtins(data))
    container.wake_worker()
    headers = {"Location": f"/v1/tenants/{tenant_id}"}
    wait = _prefer_wait(prefer, container.settings)
    if not wait:
        return _tenant_response(outcome.tenant, 202, headers)
    tenant = await _wait_for(container, tenant_id, _settings_settled, wait)
    if tenant.settings_status == SettingsStatus.PENDING:
        return _tenant_response(tenant, 202, headers)
    return _tenant_response(tenant, 200, {**headers, "Preference-Applied": f"wait={int(wait)}"})


async def _delete(request: Request[Any, Any, Any], tenant_id: str, prefer: str | None) -> Response[TenantOut]:
    container = _container(request, tenant_id)
    assert container.delete_tenant is not None
    outcome = await container.delete_tenant(tenant_id)
    if not outcome.changed:
        return _tenant_response(outcome.tenant, 200)
    return await _started(request, outcome.tenant, {TenantStatus.DELETED}, 200, {}, prefer)


async def _retry(request: Request[Any, Any, Any], tenant_id: str) -> Response[TenantOut]:
    container = _container(request, tenant_id)
    assert container.retry_tenant is not None
    outcome = await container.retry_tenant(tenant_id)
    container.wake_worker()
    return _tenant_response(outcome.tenant, 202, {"Location": f"/v1/tenants/{tenant_id}"})


class TenantController(Controller):
    path = "/v1/tenants"
    tags = ["tenants"]
    security = [{"bearer": []}]

    @post(
        "/",
        summary="Onboard a tenant",
        description=(
            "Registers the tenant and provisions its Cognito user pool, app client, identity pool and "
            "IAM roles in the background. 202 with `Location`; with `Prefer: wait=N` the call waits up "
            "to N seconds and answers 201 once provisioning has finished (check `status`: `active` or "
            "`failed`). The same body again answers 200 with the tenant as it is; a different body for "
            "the same tenant_id answers 409. With `Idempotency-Key`, a repeat gets the first answer again."
        ),
        status_code=202,
        guards=[require_scope("tenants:write")],
        response_headers=[REPLAYED_HEADER],
        responses={
            **_tenant(200, "The same body again: the tenant as it is."),
            **_tenant(
                201,
                "With `Prefer: wait=N`: provisioning finished within N seconds (`active` or `failed`).",
                active=ex.TENANT_ACTIVE,
                failed=ex.TENANT_FAILED,
            ),
            **_tenant(202, "Accepted: provisioning runs in the background; poll `Location`.", provisioning=ex.TENANT_PROVISIONING),
            **error_responses(400, 401, 403, 409, 413, 415, 422, 503),
        },
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: CreateTenantBody,
        idempotency_key: IdempotencyKeyHeader = None,
        prefer: PreferHeader = None,
    ) -> Response[TenantOut]:
        _name_tenant(data.tenant_id)  # replays too
        return await idempotent(request, idempotency_key, lambda: _create(request, data, prefer))

    @get(
        "/",
        summary="List tenants",
        description="Tenants in tenant_id order, optionally filtered; pass `next_cursor` back as `cursor` for the next page.",
        guards=[require_scope("tenants:read")],
        responses={**ok_response(200, TenantPage, "A page of tenants.", page=ex.TENANT_PAGE), **error_responses(400, 401, 403, 422, 503)},
    )
    async def list_tenants(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[
            str | None,
            QueryParameter(description="Only tenants in this status.", schema_extra={"enum": [s.value for s in TenantStatus]}),
        ] = None,
        tier: Annotated[str | None, QueryParameter(max_length=32)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> TenantPage:
        container = _container(request)
        assert container.list_tenants is not None
        after = decode_cursor(cursor, "after", lambda v: isinstance(v, str)) if cursor else None
        page = await container.list_tenants(status=status, tier=tier, limit=limit, after=after)
        return TenantPage(
            items=[tenant_out(t) for t in page.items],
            next_cursor=encode_cursor("after", page.next_after) if page.next_after else None,
        )

    @get(
        "/{tenant_id:str}",
        summary="Get a tenant",
        description="The tenant, its status, its last error and every resource recorded so far.",
        guards=[require_scope("tenants:read")],
        responses={
            **_tenant(
                200,
                "The tenant.",
                active=ex.TENANT_ACTIVE,
                provisioning=ex.TENANT_PROVISIONING,
                failed=ex.TENANT_FAILED,
            ),
            **error_responses(400, 401, 403, 404, 503),
        },
    )
    async def get_tenant(self, request: Request[Any, Any, Any], tenant_id: FromPath[str]) -> TenantOut:
        container = _container(request, tenant_id)
        assert container.get_tenant is not None
        return tenant_out(await container.get_tenant(tenant_id))

    @patch(
        "/{tenant_id:str}",
        summary="Change a live tenant's settings",
        description=(
            "A JSON merge patch (RFC 7396; `application/merge-patch+json` or `application/json`) of "
            "`display_name`, `callback_urls`, `logout_urls`, `tags` and `identity_providers` (keyed by "
            "name; `null` removes one; a provider keeps its stored client secret unless a new one is "
            "sent). Applied in place in the background: the tenant stays `active` and `settings_status` "
            "is `pending` until the change is `applied` (or `failed`, with `last_error`; PATCH again, "
            "even `{}`, to retry). 202; with `Prefer: wait=N`, 200 once applied or failed within N "
            "seconds. 409 unless the tenant is `active` with no change pending. With `Idempotency-Key`, "
            "a repeat gets the first answer again."
        ),
        status_code=202,
        guards=[require_scope("tenants:write")],
        response_headers=[REPLAYED_HEADER],
        responses={
            **_tenant(
                200,
                "With `Prefer: wait=N`: the change was applied (or failed: see `settings_status`) within N seconds.",
                applied=ex.TENANT_SETTINGS_APPLIED,
            ),
            **_tenant(202, "Accepted: the change is applied in the background.", pending=ex.TENANT_SETTINGS_PENDING),
            **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
        },
    )
    async def update_tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[str],
        data: Annotated[
            PatchTenant,
            Body(
                description="The merge patch (RFC 7396).",
                media_type="application/merge-patch+json",
                examples=[ex.example("new URLs, a tag and a provider changed, Google removed", ex.PATCH_TENANT)],
            ),
        ],
        idempotency_key: IdempotencyKeyHeader = None,
        prefer: PreferHeader = None,
    ) -> Response[TenantOut]:
        _name_tenant(tenant_id)
        return await idempotent(request, idempotency_key, lambda: _patch(request, tenant_id, data, prefer))

    @delete(
        "/{tenant_id:str}",
        summary="Tear a tenant down",
        description=(
            "Deletes every AWS resource the tenant owns, in reverse order, and keeps a `deleted` "
            "tombstone. 202 while deprovisioning; 200 for a tenant already deleted or, with "
            "`Prefer: wait=N`, when the teardown finished within N seconds. With `Idempotency-Key`, a "
            "repeat gets the first answer again."
        ),
        status_code=202,
        guards=[require_scope("tenants:delete")],
        response_headers=[REPLAYED_HEADER],
        responses={
            **_tenant(
                200,
                "Already deleted, or with `Prefer: wait=N` the teardown finished within N seconds.",
                deleted=ex.TENANT_DELETED,
            ),
            **_tenant(202, "Accepted: teardown runs in the background.", deprovisioning=ex.TENANT_DEPROVISIONING),
            **error_responses(400, 401, 403, 404, 409, 415, 422, 503, descriptions=_KEY_ONLY_DESCRIPTIONS),
        },
    )
    async def delete_tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[str],
        idempotency_key: IdempotencyKeyHeader = None,
        prefer: PreferHeader = None,
    ) -> Response[TenantOut]:
        _name_tenant(tenant_id)
        return await idempotent(request, idempotency_key, lambda: _delete(request, tenant_id, prefer))

    @post(
        "/{tenant_id:str}/retry",
        summary="Retry a failed onboarding",
        description=(
            "Resumes provisioning from the steps already recorded. Only from `failed`; otherwise 409. "
            "With `Idempotency-Key`, a repeat gets the first answer again."
        ),
        status_code=202,
        guards=[require_scope("tenants:write")],
        response_headers=[REPLAYED_HEADER],
        responses={
            **_tenant(202, "Accepted: provisioning resumes in the background.", provisioning=ex.TENANT_PROVISIONING),
            **error_responses(400, 401, 403, 404, 409, 415, 422, 503),
        },
    )
    async def retry(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[str], idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[TenantOut]:
        _name_tenant(tenant_id)
        return await idempotent(request, idempotency_key, lambda: _retry(request, tenant_id))

    @get(
        "/{tenant_id:str}/events",
        summary="List a tenant's audit events",
        description=(
            "The audit trail, oldest first: every state-changing request about the tenant (who: the API "
            "key id or token subject; what; when; the HTTP status, refused requests included) and every "
            "provisioning or teardown step and run outcome recorded by the worker. Kept after the tenant "
            "is deleted; 404 for an id no tenant was ever registered under. Pass `next_cursor` back as "
            "`cursor` for the next page."
        ),
        guards=[require_scope("tenants:read")],
        responses={
            **ok_response(200, AuditEventPage, "A page of audit events.", page=ex.AUDIT_PAGE),
            **error_responses(
                400, 401, 403, 404, 422, 503, descriptions={404: "No tenant was ever registered under this id (a deleted one keeps its events)."}
            ),
        },
    )
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> AuditEventPage:
        container = _container(request, tenant_id)
        assert container.tenant_events is not None
        return await events_page(container.tenant_events, tenant_id, limit=limit, cursor=cursor)


@get(
    "/v1/tiers",
    tags=["tiers"],
    summary="List tiers",
    description="Every tier a tenant can be onboarded with, and what its template provisions.",
    security=[{"bearer": []}],
    guards=[require_scope("tenants:read")],
    responses={**ok_response(200, list[TierOut], "The tiers.", tiers=ex.TIERS), **error_responses(401, 403, 503)},
)
async def list_tiers(request: Request[Any, Any, Any]) -> list[TierOut]:
    tiers = _container(request).tiers
    return [TierOut(name=name, description=t.description, settings=t.summary()) for name, t in sorted(tiers.items())]


@get(
    "/health/live",
    tags=["health"],
    summary="Liveness",
    description="200 while the process serves HTTP.",
    responses=ok_response(200, dict[str, str], "Alive.", live=ex.LIVE),
)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/health/ready",
    tags=["health"],
    summary="Readiness",
    description="200 when the registry and AWS answer; 503 otherwise.",
    responses={**ok_response(200, dict[str, Any], "Ready.", ready=ex.READY), **error_responses(503)},
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    from adapters.registry.sql import ping

    container = _container(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ping(container.engine), 5)
        checks["registry"] = "ok"
    except Exception as exc:
        checks["registry"] = f"unavailable ({type(exc).__name__})"
    try:
        assert container.aws is not None
        await asyncio.wait_for(container.aws.caller_identity(), 5)
        checks["aws"] = "ok"
    except Exception as exc:
        checks["aws"] = f"unavailable ({type(exc).__name__})"
    if container.emulator_mismatch is not None:
        checks["emulator"] = container.emulator_mismatch
    if all(v == "ok" for v in checks.values()):
        return Response({"status": "ok", "checks": checks})
    detail = ", ".join(f"{k}: {v}" for k, v in checks.items())
    return problem(503, "unavailable", "Not ready", detail, {"Retry-After": "5"})


@get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics",
    description=(
        "Metrics in the Prometheus text format (version 0.0.4): onboarding and teardown durations, "
        "step durations, AWS calls by outcome, tenants by status and the waiting jobs. Needs no key, "
        "like /health: keep it off the public network (README, Metrics)."
    ),
    media_type=METRICS_CONTENT_TYPE,
    responses={
        200: ResponseSpec(
            data_container=str,
            media_type=METRICS_CONTENT_TYPE,
            description="The metrics, in the Prometheus text format.",
            generate_examples=False,
            examples=[ex.example("an excerpt", ex.METRICS)],
        )
    },
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    container = _container(request)
    body = await container.metrics.render(container.engine, container.clock.now())
    return Response(body, media_type=METRICS_CONTENT_TYPE)


class RequestContextMiddleware:
    """Request id (X-Request-ID in and out), bound to every log line, and one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.clear_contextvars()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                # Raised by an inner middleware (auth): answered by the app's handlers, outside us.
                status = status_of(exc)
                raise
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    freeze_heap: bool = False,
    **overrides: Any,
) -> Litestar:
    """Build the app. ``overrides`` are settings fields; ``container`` replaces the wiring (tests).
    ``freeze_heap`` (`tenantctl serve`) freezes the heap once started (service/runtime.py)."""
    from service.keys_api import KeysController

    settings = settings or load_settings(**overrides)
    container = container or Container.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await container.start()
        if freeze_heap:
            from service.runtime import freeze_startup_heap

            log.info("heap_frozen", objects=freeze_startup_heap())
        try:
            yield
        finally:
            await container.stop()

    rate_limits = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
    return Litestar(
        route_handlers=[TenantController, list_tiers, KeysController, live, ready, metrics],
        lifespan=[lifespan],
        state=State({"container": container, "rate_limits": rate_limits}),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            RequestContextMiddleware,  # first, so that even a 431 has a request id and an access-log line
            DefineMiddleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes),
            AllowFromRoutes,
            AuditMiddleware,  # outside authentication: sees every answer but a 401
            DefineMiddleware(ApiKeyAuthentication, exclude=[r"^/health", r"^/schema", r"^/metrics"]),
            DefineMiddleware(CredentialRateLimit, buckets=rate_limits),  # after auth: keyed by the principal
        ],
        guards=[reject_unknown_query_params, check_request_body],  # both before any route guard or body decoding
        plugins=[StrictStructSchemaPlugin()],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tenant identity provisioner",
            version=API_VERSION,
            description="Onboards SaaS tenants onto Amazon Cognito: a dedicated user pool, app client, "
            "identity pool and IAM roles per tenant. See API.md.",
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API key, or a JWT access token (OAuth2 client credentials) when the "
                        "service is configured with its issuer's JWKS",
                    )
                }
            ),
        ),
        debug=False,
        logging_config=None,  # structlog owns logging (service/logs.py)
    )
