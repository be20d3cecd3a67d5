"""IAM documents: trust pinned to one identity pool; role policies rendered as data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.policies import POLICY_VERSION, render_role_policy, trust_policy
from domain.tiers import PolicyStatement
from tests.unit.fakes import shipped_tiers

POOL = "us-east-1:00000000-0000-0000-0000-000000000001"


def values(**overrides: str) -> dict[str, str]:
    base = {
        "tenant_id": "acme",
        "partition": "aws",
        "region": "eu-west-1",
        "account_id": "123456789012",
        "user_pool_id": "eu-west-1_Abc",
        "user_pool_arn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc",
        "identity_pool_id": POOL,
    }
    base.update(overrides)
    return base


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def statement(**fields: Any) -> PolicyStatement:
    body = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/{{tenant_id}}/*"]}
    body.update(fields)
    return PolicyStatement.model_validate(body)


# -- trust policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(("authenticated", "amr"), [(True, "authenticated"), (False, "unauthenticated")])
def test_trust_policy_pins_audience_and_amr(authenticated: bool, amr: str) -> None:
    doc = trust_policy(POOL, authenticated=authenticated)
    assert doc["Version"] == POLICY_VERSION
    [stmt] = doc["Statement"]
    assert stmt["Effect"] == "Allow"
    assert stmt["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert stmt["Condition"]["StringEquals"] == {"cognito-identity.amazonaws.com:aud": POOL}
    assert stmt["Condition"]["ForAnyValue:StringLike"] == {"cognito-identity.amazonaws.com:amr": amr}


def test_trust_policies_of_two_pools_differ_only_in_audience() -> None:
    a = trust_policy(POOL, authenticated=True)
    b = trust_policy("us-east-1:other", authenticated=True)
    assert a != b
    assert json.dumps(a).replace(POOL, "X") == json.dumps(b).replace("us-east-1:other", "X")


def test_trust_policy_is_json_serialisable() -> None:
    assert json.loads(json.dumps(trust_policy(POOL, authenticated=False))) == trust_policy(POOL, authenticated=False)


# -- role policies ------------------------------------------------------------------------------


def test_rendering_fills_placeholders_in_nested_strings_and_keys() -> None:
    stmt = statement(
        Sid="Rows",
        Resource=["arn:{{partition}}:dynamodb:{{ region }}:{{account_id}}:table/t", "{{user_pool_arn}}"],
        Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["{{tenant_id}}#*"]},
                   "StringEquals": {"aws:ResourceTag/{{tenant_id}}": "{{identity_pool_id}}"}},
    )
    doc = render_role_policy((stmt,), values())
    assert doc["Version"] == POLICY_VERSION
    [rendered] = doc["Statement"]
    assert rendered["Sid"] == "Rows"
    assert rendered["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/t",
        "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc",
    ]
    assert rendered["Condition"]["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["acme#*"]}
    assert rendered["Condition"]["StringEquals"] == {"aws:ResourceTag/acme": POOL}
    assert not [s for s in _strings(doc) if "{{" in s]


def test_iam_policy_variables_pass_through_untouched() -> None:
    stmt = statement(Resource=["arn:{{partition}}:s3:::b/{{tenant_id}}/${cognito-identity.amazonaws.com:sub}/*"])
    [rendered] = render_role_policy((stmt,), values())["Statement"]
    assert rendered["Resource"] == ["arn:aws:s3:::b/acme/${cognito-identity.amazonaws.com:sub}/*"]


def test_shipped_premium_policies_render_completely() -> None:
    premium = shipped_tiers()["premium"]
    for statements in (premium.authenticated_policy, premium.unauthenticated_policy):
        doc = render_role_policy(statements, values())
        strings = list(_strings(doc))
        assert not [s for s in strings if "{{" in s or "}}" in s]
        assert any("saas-tenant-data/acme/" in s for s in strings)
    auth = render_role_policy(premium.authenticated_policy, values())
    assert "${cognito-identity.amazonaws.com:sub}" in json.dumps(auth)


def test_missing_placeholder_values_are_refused() -> None:
    incomplete = values()
    del incomplete["identity_pool_id"]
    with pytest.raises(ValueError, match="identity_pool_id"):
        render_role_policy((statement(),), incomplete)


def test_rendering_does_not_change_the_template() -> None:
    stmt = statement()
    before = stmt.as_document()
    render_role_policy((stmt,), values())
    assert stmt.as_document() == before


def _shape(value: Any) -> Any:
    """The structure of a document with every string replaced by a marker."""
    if isinstance(value, dict):
        return {"<key>" if "acme" in k or "{{" in k else k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "<str>" if isinstance(value, str) else value


@pytest.mark.parametrize(
    "tenant_id",
    [
        "acme",
        'evil", "Resource": "arn:aws:s3:::other',
        'a"]], "Effect": "Allow", "Resource": ["arn:aws:s3:::x',
        "\\1 \\g<0>",
        "x\ny",
    ],
)
def test_a_tenant_id_cannot_escape_its_string(tenant_id: str) -> None:
    premium = shipped_tiers()["premium"]
    reference = render_role_policy(premium.authenticated_policy, values())
    doc = render_role_policy(premium.authenticated_policy, values(tenant_id=tenant_id))
    # Same statements, same keys, same list lengths: only string contents differ.
    assert _shape(doc) == _shape(reference)
    round_tripped = json.loads(json.dumps(doc))
    assert round_tripped == doc
    assert len(round_tripped["Statement"]) == len(premium.authenticated_policy)
    for stmt in round_tripped["Statement"]:
        assert stmt["Action"] != "*" and "*" not in stmt["Action"]
        assert all(r != "*" for r in stmt["Resource"])
    # The value lands verbatim: it is neither re-expanded nor treated as a regex replacement.
    assert f"saas-tenant-data/{tenant_id}/" in doc["Statement"][0]["Resource"][0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tenant_id", "*"),
        ("tenant_id", 'evil", "Resource": "*'),
        ("tenant_id", "acme?"),
        ("tenant_id", "{{account_id}}"),
        ("tenant_id", "${aws:username}"),
        ("tenant_id", "\\1 \\g<0> $1"),
        ("user_pool_id", "eu-west-1_*"),
        ("identity_pool_id", "*"),
        ("region", "*"),
        ("account_id", "*"),
    ],
)
def test_a_value_that_could_widen_a_statement_is_refused(name: str, value: str) -> None:
    premium = shipped_tiers()["premium"]
    with pytest.raises(ValueError, match=name):
        render_role_policy(premium.authenticated_policy, values(**{name: value}))


@pytest.mark.parametrize(
    ("name", "value"),
    [("partition", "arn"), ("partition", "aws-evil"), ("region", "x:y"), ("region", ""), ("account_id", ""), ("account_id", "1:2")],
)
def test_a_value_that_breaks_the_arn_shape_is_refused(name: str, value: str) -> None:
    premium = shipped_tiers()["premium"]
    with pytest.raises(ValueError, match=name):
        render_role_policy(premium.authenticated_policy, values(**{name: value}))
