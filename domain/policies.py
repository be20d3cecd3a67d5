"""IAM policy documents for a tenant's roles, built as data, never by pasting strings into JSON."""

from __future__ import annotations

from typing import Any

from domain.tiers import _PLACEHOLDER_RE, PLACEHOLDERS, PolicyStatement

POLICY_VERSION = "2012-10-17"


def trust_policy(identity_pool_id: str, *, authenticated: bool) -> dict[str, Any]:
    """Only this tenant's identity pool may assume the role, and only for the right ``amr``."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool_id},
                    "ForAnyValue:StringLike": {
                        "cognito-identity.amazonaws.com:amr": "authenticated" if authenticated else "unauthenticated"
                    },
                },
            }
        ],
    }


def _substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {_substitute(k, values): _substitute(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_substitute(v, values) for v in value]
    return value


def render_role_policy(statements: tuple[PolicyStatement, ...], values: dict[str, str]) -> dict[str, Any]:
    """Fill ``{{placeholders}}`` inside the statements' strings.

    ``values`` must hold every placeholder; tenant ids are pattern-checked before they get here,
    so a value can only ever land inside one JSON string and cannot widen a statement.
    """
    missing = PLACEHOLDERS - values.keys()
    if missing:
        raise ValueError(f"missing placeholder values: {sorted(missing)}")
    return {"Version": POLICY_VERSION, "Statement": [_substitute(s.as_document(), values) for s in statements]}
