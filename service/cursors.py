"""Opaque keyset-pagination cursors: base64url of ``{field: last value}``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from domain.errors import InvalidInput


def encode_cursor(field: str, value: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({field: value}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str, valid: Callable[[Any], bool]) -> Any:
    """The value under ``field``; 422 naming ``cursor`` for anything this API did not issue."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[field]
    except (binascii.Error, ValueError, KeyError, TypeError):
        value = None
    if value is None or not valid(value):
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return value
