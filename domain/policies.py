"""IAM policy documents for a tenant's roles, built as data, never by pasting strings into JSON."""

from __future__ import annotations

import re
from typing import Any

from domain.tiers import _PLACEHOLDER_RE, PARTITIONS, PLACEHOLDERS, PolicyStatement

POLICY_VERSION = "2012-10-17"
# A value with one of these could widen the string it lands in (IAM wildcards, policy variables,
# or a placeholder of its own). Tenant ids cannot hold them; an AWS id never does.
_WIDENING = ("*", "?", "$", "{", "}")
# The fields every ARN is built from; a ":" in one would shift the fields after it.
_ARN_FIELDS = {
    "partition": re.compile(r"aws(?:-cn|-us-gov)?"),
    "region": re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d"),
    "account_id": re.compile(r"\d{12}"),
}


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
    for name, value in values.items():
        if any(char in value for char in _WIDENING):
            raise ValueError(f"placeholder value {name!r} holds a wildcard or a policy variable: {value!r}")
        if name in _ARN_FIELDS and not _ARN_FIELDS[name].fullmatch(value):
            raise ValueError(f"placeholder value {name!r} is not a valid ARN field: {value!r}")
    document = {"Version": POLICY_VERSION, "Statement": [_substitute(s.as_document(), values) for s in statements]}
    for statement in document["Statement"]:
        if statement["Effect"] == "Allow":
            for resource in statement["Resource"]:
                _check_rendered_arn(resource)
    return document


def _check_rendered_arn(resource: str) -> None:
    """Templates are checked when loaded (domain/tiers.py); this re-checks the result, so that no
    value can turn a Resource into something other than an ARN of this account and Region."""
    parts = resource.split(":", 5)
    if (
        len(parts) < 6
        or parts[0] != "arn"
        or parts[1] not in PARTITIONS
        or not parts[2]
        or any(w in field for field in parts[1:5] for w in _WIDENING)
    ):
        raise ValueError(f"rendered Resource {resource!r} is not an ARN without wildcards in partition, service, Region and account")
