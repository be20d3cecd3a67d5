"""OpenAPI response documentation shared by the controllers (service/app.py, service/keys_api.py):
the problem responses of each status with their descriptions and examples, and success responses
with fixed examples."""

from __future__ import annotations

from typing import Any

from litestar.openapi import ResponseSpec

from service import openapi_examples as ex
from service.errors import PROBLEM
from service.schemas import Problem

DESCRIPTIONS = {
    400: "Malformed request, such as a body that is not JSON, is empty where the route needs one, nests "
    "arrays and objects more than 32 deep, or has an object with a key twice (`errors` names it).",
    401: "No, unknown, revoked or expired API key, or a JWT that fails a check (signature, issuer, "
    "audience, expiry).",
    403: "The API key or token lacks the route's scope.",
    404: "No such tenant.",
    409: "Conflicts with the tenant's stored spec or state; or the first request with this "
    "`Idempotency-Key` is still in progress (retry after `Retry-After` seconds).",
    413: "Request body too large.",
    415: "The body's `Content-Type` is not one the route reads: `application/json` (PATCH: also "
    "`application/merge-patch+json`), UTF-8; `Accept` and `Accept-Post` / `Accept-Patch` name them.",
    422: "Invalid body or parameters (`errors` names each field, unknown ones included), or an "
    "`Idempotency-Key` already used with a different request.",
    429: "This credential's rate limit is used up; retry after `Retry-After` seconds. Every answer to "
    "an authenticated request carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.",
    431: "Request header fields too large.",
    503: "The registry, or for a JWT its issuer's signing keys (JWKS), is unavailable; retry after "
    "`Retry-After` seconds.",
}

def error_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, ResponseSpec]:
    # No generated examples: they are random (polyfactory), which would make the committed
    # OpenAPI document differ on every export, and they are not JSON-serializable as built.
    # Every route meets the header size limit (431); every authenticated one (it lists 401) also
    # the rate limit (429) and the check for unknown query parameters (422): service/limits.py.
    implied = {431} | ({422, 429} if 401 in statuses else set())
    descr = {**DESCRIPTIONS, **(descriptions or {})}
    return {
        s: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM,
            description=descr[s],
            generate_examples=False,
            examples=[ex.problem_example(s)],
        )
        for s in sorted({*statuses, *implied})
    }


def ok_response(status: int, container: Any, description: str, **examples: Any) -> dict[int, ResponseSpec]:
    """A success response with its examples (keyword: summary, value). Also used for a handler's
    default status, which Litestar would otherwise document without an example."""
    return {
        status: ResponseSpec(
            data_container=container,
            generate_examples=False,
            description=description,
            examples=[ex.example(summary.replace("_", " "), value) for summary, value in examples.items()],
        )
    }
