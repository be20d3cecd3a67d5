"""The AWS JSON-protocol plumbing the emulator's extensions share.

Extensions see one parsed request (`AwsRequest`) and refuse with `AwsError`; the middleware turns
that into the exact error shape botocore parses, so callers get a real `ClientError` with the
right code instead of the HTML 500 moto answers for an action it lacks.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# moto answers unsigned Cognito calls in us-east-1 too (werkzeug_app.UNSIGNED_REQUESTS).
FALLBACK_REGION = "us-east-1"


class AwsError(Exception):
    """A modelled AWS error: rendered as HTTP 400 `{"__type": code, "message": ...}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def invalid_parameter(message: str) -> AwsError:
    """Cognito (both APIs) reports bad input as InvalidParameterException."""
    return AwsError("InvalidParameterException", message)


def not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


@dataclass
class AwsRequest:
    """One JSON-protocol call, already routed by its `X-Amz-Target`.

    `scratch` lets a `before` hook hand state to its `after` hook within the same call.
    """

    target: str
    params: dict[str, Any]
    region: str
    account_id: str
    scratch: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


# A `before` hook may refuse (raise AwsError), answer the call itself (return the response
# body, moto is never asked), or let moto handle it (return None).
Before = Callable[[AwsRequest], dict[str, Any] | None]
# An `after` hook runs only when moto answered 200; it may fix moto's state and returns the
# (possibly amended) response body.
After = Callable[[AwsRequest, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Hook:
    """What the emulator adds around one moto action."""

    before: Before | None = None
    after: After | None = None


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(access key id, region) from a SigV4 `Authorization` header, or (None, None).

    The header looks like
    `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/cognito-idp/aws4_request, ...`.
    """
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    start = auth.find(marker)
    if start < 0:
        return None, None
    scope = auth[start + len(marker) :].split(",", 1)[0].strip()
    parts = scope.split("/")
    if len(parts) != 5:
        return None, None
    return parts[0], parts[2]


def account_id_for(environ: dict[str, Any], access_key: str | None) -> str:
    """The account moto would act in, by moto's own precedence (responses.get_current_account).

    Matching moto matters: an extension must find the pools moto created for the same caller.
    """
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return str(header)
    if access_key:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(access_key)
    return DEFAULT_ACCOUNT_ID


def read_body(environ: dict[str, Any]) -> bytes:
    """Read a WSGI request body and put a fresh copy back for the next app in the chain."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    raw = b""
    if length > 0:
        raw = bytes(stream.read(length))
    elif environ.get("wsgi.input_terminated"):  # chunked upload: werkzeug ends the stream
        raw = bytes(stream.read())
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    return raw
