"""The WSGI middleware that puts the emulator's extensions in front of moto's server app.

Only requests whose `X-Amz-Target` has a hook are touched; everything else goes to moto as is.
Hooked calls run under one process-wide lock, because moto's backends are process-global and
a check-then-act (say "no domain, so delete the pool") must not interleave with another call.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import authorization
from .protocol import (
    FALLBACK_REGION,
    JSON_CONTENT_TYPE,
    AwsError,
    AwsRequest,
    Hook,
    account_id_for,
    credential_scope,
    read_body,
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]

_STATE_LOCK = threading.RLock()


class ExtensionMiddleware:
    """Runs the `before`/`after` hooks registered for an `X-Amz-Target` around the moto app."""

    def __init__(self, app: WsgiApp, hooks: Mapping[str, Hook]) -> None:
        self._app = app
        self._hooks = dict(hooks)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        is_post = environ.get("REQUEST_METHOD") == "POST"
        hook = self._hooks.get(target) if is_post else None
        # Once moto enforces IAM policies, every JSON-protocol call is authorized here first
        # (authorization.py), hooked ones included: moto never sees those.
        if hook is None and not (is_post and target and authorization.enforcing()):
            return self._app(environ, start_response)

        raw = read_body(environ)
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return self._app(environ, start_response)  # let moto reject what it cannot parse

        access_key, region = credential_scope(environ)
        request = AwsRequest(
            target=target,
            params=params,
            region=region or FALLBACK_REGION,
            account_id=account_id_for(environ, access_key),
        )
        denied = authorization.authorize(environ, raw, target, params, request.region, request.account_id)
        if denied is not None:
            return _respond(start_response, "400 Bad Request", _error_body(denied), denied.code)
        if hook is None:
            return self._app(environ, start_response)
        with _STATE_LOCK:
            try:
                return self._handle(hook, request, environ, start_response)
            except AwsError as error:
                return _respond(start_response, "400 Bad Request", _error_body(error), error.code)

    def _handle(
        self,
        hook: Hook,
        request: AwsRequest,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        if hook.before is not None:
            answer = hook.before(request)
            if answer is not None:
                return _respond(start_response, "200 OK", json.dumps(answer).encode())
        # Buffer moto's answer so it runs inside the lock and an `after` hook can amend it.
        status, headers, body = _call(self._app, environ)
        if hook.after is not None and status.startswith("200"):
            amended = hook.after(request, json.loads(body or b"{}"))
            body = json.dumps(amended).encode()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, list(headers)
        return chunks.append

    result = app(environ, capture)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _error_body(error: AwsError) -> bytes:
    return json.dumps({"__type": error.code, "message": error.message}).encode()


def _respond(
    start_response: StartResponse, status: str, body: bytes, error_type: str | None = None
) -> list[bytes]:
    """Answer in the AWS JSON 1.1 shape botocore parses (error code from `__type`)."""
    headers = [
        ("Content-Type", JSON_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(status, headers)
    return [body]
