"""API keys: expiry parsing, scope checks and what is kept of a new key."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.apikeys import (
    ALL_SCOPES,
    OPERATOR_KEY_PREFIX,
    ExpiryError,
    bootstrap_record,
    canonical_scopes,
    issue_key,
    key_out,
    key_status,
    parse_expiry,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("90m", NOW + timedelta(minutes=90)),
        ("2w", NOW + timedelta(weeks=2)),
        ("2027-01-31T00:00:00Z", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T02:00:00+02:00", datetime(2027, 1, 31, tzinfo=UTC)),
    ],
)
def test_expiry_forms(text: str, expected: datetime) -> None:
    parsed = parse_expiry(text, NOW)
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0h", "not a positive duration"),
        ("-3d", "neither a duration"),
        ("3 days", "neither a duration"),
        ("2026-06-01T12:00:00Z", "not in the future"),  # exactly now
        ("2026-06-01T11:00:00-00:30", "not in the future"),
        ("2027-01-31T00:00:00", "no UTC offset"),
    ],
)
def test_bad_expiries_say_why(text: str, says: str) -> None:
    with pytest.raises(ExpiryError, match=says):
        parse_expiry(text, NOW)


def test_scopes_are_checked_and_put_in_one_order() -> None:
    assert canonical_scopes(["keys:admin", "tenants:read", "keys:admin"]) == ("tenants:read", "keys:admin")
    with pytest.raises(ValueError, match="'tenants:admin'"):
        canonical_scopes(["tenants:read", "tenants:admin"])
    with pytest.raises(ValueError, match="at least one"):
        canonical_scopes([])


def test_an_issued_key_is_kept_as_hash_and_prefix_only() -> None:
    issued = issue_key("ci", ["tenants:write"], NOW, NOW + timedelta(days=1))
    record = issued.record
    assert record.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key.startswith(record.prefix) and len(record.prefix) == 10
    assert issued.key not in repr(record) and issued.key not in repr(issued)
    assert issue_key("ci", ["tenants:write"], NOW).key != issued.key
    view = key_out(record, NOW)
    assert "key_hash" not in view and issued.key not in str(view)
    assert view["scopes"] == ["tenants:write"] and view["status"] == "active"
    with pytest.raises(ExpiryError):
        issue_key("ci", ["tenants:read"], NOW, NOW - timedelta(seconds=1))


def test_status() -> None:
    record = issue_key("ci", ALL_SCOPES, NOW, NOW + timedelta(hours=1)).record
    assert key_status(record, NOW) == "active"
    assert key_status(record, NOW + timedelta(hours=1)) == "expired"
    assert key_status(replace(record, revoked_at=NOW), NOW) == "revoked"


def test_a_bootstrap_key_without_tpk_shows_none_of_its_characters() -> None:
    operator = "k7Q2-zz91-WxYv-8842-hhJd-0pLm-Rt5s-b6"
    record = bootstrap_record(operator, NOW)
    assert record.prefix == OPERATOR_KEY_PREFIX
    assert not any(operator[i : i + 4] in record.prefix for i in range(len(operator) - 3))
    generated = "tpk_" + "Ab3dEf" + "x" * 37
    assert bootstrap_record(generated, NOW).prefix == "tpk_Ab3dEf"  # a service-style key keeps its hint
