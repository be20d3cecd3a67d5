"""The one check every request body passes before anything decodes it.

``check_request_body`` is an app-wide guard. Guards run before Litestar decodes ``data``, and the
audit middleware and the Idempotency-Key fingerprint only read a body this guard accepted, so no
code of the service ever decodes an unchecked body. On a state-changing ``/v1`` request
(POST, PUT, PATCH, DELETE) with a body:

- its ``Content-Type`` must be ``application/json`` (PATCH: also
  ``application/merge-patch+json``, RFC 7396), with no charset but UTF-8 (RFC 8259, 8.1) -> else
  415 with ``Accept`` (RFC 9110, 15.5.16) and ``Accept-Post`` / ``Accept-Patch`` (RFC 5789);
- it must be nested at most ``MAX_DEPTH`` arrays and objects deep -> else 400 ``body_too_deep``.
  Counted by a scan of the bytes before any parser sees them: Python's ``json`` and msgspec both
  recurse per level and hit Python's recursion limit near 1,000 levels, which a 2 KB body reaches;
- it must be JSON -> else 400 ``malformed_json``, with no object holding a key twice (JSON
  parsers keep the last one, others the first: two readers of one body would disagree) -> else
  400 ``duplicate_key`` naming the key's path.

A route that takes a body and gets none answers 400 ``empty_body``, naming the fields to send.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from service.errors import BodyRejected, UnsupportedMediaType

MAX_DEPTH = 32  # the deepest body of the API is 4 levels; README, "Errors"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STATE_KEY = "tenants_checked_json"  # in scope["state"]: the body as the guard decoded it
# A JSON string, escapes included; one never closed runs to the end. Possessive and always matching
# at a quote: one pass over the body, no backtracking, no retry at the next quote.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


class _Duplicated(dict[str, Any]):
    """A JSON object that held ``key`` more than once."""

    __slots__ = ("key",)
    key: str


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    duplicated = _Duplicated(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            duplicated.key = key
            break
        seen.add(key)
    return duplicated


def _duplicate_path(value: Any, path: str = "") -> str | None:
    """The path (``tags.team``, ``x[0].a``) of the first duplicated key, outermost first."""
    if isinstance(value, _Duplicated):
        return f"{path}.{value.key}" if path else value.key
    if isinstance(value, dict):
        inner = ((f"{path}.{name}" if path else name, item) for name, item in value.items())
    elif isinstance(value, list):
        inner = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for where, item in inner:
        found = _duplicate_path(item, where)
        if found:
            return found
    return None


def depth_of(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in ``raw`` (brackets inside strings do not count); the
    count stops once it passes ``limit``. Strings are cut out and the brackets picked in C (re,
    bytes.translate), so only the brackets are counted in Python."""
    depth = deepest = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def decode_json(raw: bytes) -> Any:
    """``raw`` as JSON, or ``BodyRejected``: nested deeper than ``MAX_DEPTH``, not UTF-8 JSON, or
    an object with a key twice."""
    if depth_of(raw) > MAX_DEPTH:
        raise BodyRejected(f"the request body is nested deeper than {MAX_DEPTH} arrays and objects", code="body_too_deep")
    duplicates = 0

    def object_of(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = _object(pairs)
        duplicates += isinstance(obj, _Duplicated)
        return obj

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=object_of)
    except UnicodeDecodeError:
        raise BodyRejected("the request body is not UTF-8", code="malformed_json") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BodyRejected(f"the request body is not valid JSON: {exc.msg} ({where})", code="malformed_json") from None
    duplicated = _duplicate_path(value) if duplicates else None  # the walk only to name the key
    if duplicated is not None:
        reason = "appears twice in one JSON object"
        raise BodyRejected(f"{duplicated}: {reason}", code="duplicate_key", field=duplicated, reason=reason)
    return value


def _accepted(handler: BaseRouteHandler) -> tuple[str, ...]:
    """JSON, and the merge patch where the route's body declares it (PATCH /v1/tenants/{id})."""
    data = handler.parsed_fn_signature.parameters.get("data")
    declared = getattr(data.kwarg_definition, "media_type", None) if data is not None else None
    return (MERGE_PATCH, JSON) if declared == MERGE_PATCH else (JSON,)


def _check_media_type(value: str, method: str, accepted: tuple[str, ...]) -> None:
    media_type, _, parameters = value.partition(";")
    media_type = media_type.strip().lower()
    listed = " or ".join(accepted)
    if media_type not in accepted:
        sent = f"Content-Type {media_type!r}" if media_type else "no Content-Type"
        raise UnsupportedMediaType(f"the request body has {sent}: send it as {listed}", method=method, accepted=accepted)
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"the request body is in charset {charset.strip()!r}: JSON is read as UTF-8 only ({listed})",
                method=method,
                accepted=accepted,
            )


def _what_to_send(handler: BaseRouteHandler) -> str:
    data = handler.parsed_fn_signature.parameters.get("data")
    annotation = data.annotation if data is not None else None
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        return "send a JSON object"
    fields = msgspec.structs.fields(annotation)
    required = [f.encode_name for f in fields if f.required]
    if not required:  # a merge patch
        return "send a JSON object with the members to change, of " + ", ".join(f.encode_name for f in fields)
    listed = required[0] if len(required) == 1 else ", ".join(required[:-1]) + " and " + required[-1]
    return f"send a JSON object with {listed}"


async def check_request_body(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app-wide guard described above. async: a plain function guard would run in a thread."""
    scope = connection.scope
    method = scope.get("method", "")
    if method not in BODY_METHODS or not scope["path"].startswith("/v1/"):
        return
    raw: bytes = await connection.body()  # type: ignore[attr-defined]  # an HTTP route: a Request
    takes_data = "data" in handler.parsed_fn_signature.parameters
    if not raw:
        if takes_data:
            message = f"the request body is empty: {_what_to_send(handler)}"
            raise BodyRejected(message, code="empty_body")
        return
    _check_media_type(connection.headers.get("content-type", ""), method, _accepted(handler))
    scope["state"][_STATE_KEY] = decode_json(raw)


def checked_json(scope: Scope) -> Any:
    """The body as ``check_request_body`` decoded it; None when it did not (no body, or refused)."""
    return scope.get("state", {}).get(_STATE_KEY)
