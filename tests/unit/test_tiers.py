"""Tier templates: the shipped file parses, and a bad one says which tier and field is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from domain.errors import TemplateError
from domain.tiers import REQUIRED_AUTH_FLOWS, parse_tiers
from tests.unit.fakes import shipped_tiers, shipped_tiers_document

AUTH_POLICY = [
    {
        "Sid": "TenantData",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:{{partition}}:s3:::bucket/{{tenant_id}}/${cognito-identity.amazonaws.com:sub}/*"],
    }
]


def minimal(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"description": "a tier", "authenticated_policy": copy.deepcopy(AUTH_POLICY)}
    body.update(overrides)
    return body


def doc(**tiers: dict[str, Any]) -> dict[str, Any]:
    return {"tiers": tiers}


def template_error(data: dict[str, Any]) -> str:
    with pytest.raises(TemplateError) as caught:
        parse_tiers(data)
    assert caught.value.code == "invalid_template"
    return caught.value.message


# -- the shipped file ---------------------------------------------------------------------------


def test_shipped_tiers_parse_into_basic_standard_premium() -> None:
    tiers = shipped_tiers()
    assert set(tiers) == {"basic", "standard", "premium"}
    assert all(tiers[name].name == name for name in tiers)


def test_shipped_tiers_differ_where_it_matters() -> None:
    t = shipped_tiers()
    basic, standard, premium = t["basic"], t["standard"], t["premium"]
    assert (basic.mfa, standard.mfa, premium.mfa) == ("OFF", "OPTIONAL", "ON")
    assert (basic.feature_plan, standard.feature_plan, premium.feature_plan) == ("LITE", "ESSENTIALS", "PLUS")
    assert (basic.deletion_protection, standard.deletion_protection, premium.deletion_protection) == (False, True, True)
    assert (basic.hosted_ui_domain, standard.hosted_ui_domain, premium.hosted_ui_domain) == (False, False, True)
    assert (basic.allow_guest_identities, standard.allow_guest_identities, premium.allow_guest_identities) == (
        False,
        False,
        True,
    )
    assert premium.unauthenticated_policy and not basic.unauthenticated_policy
    assert standard.mfa_methods == premium.mfa_methods == ("TOTP",)


@pytest.mark.parametrize("tier", ["basic", "standard", "premium"])
def test_every_shipped_app_client_allows_srp_and_refresh(tier: str) -> None:
    flows = shipped_tiers()[tier].app_client.explicit_auth_flows
    assert "ALLOW_USER_SRP_AUTH" in flows
    assert "ALLOW_REFRESH_TOKEN_AUTH" in flows


@pytest.mark.parametrize("tier", ["basic", "standard", "premium"])
def test_every_shipped_tier_has_an_admin_group_among_its_groups(tier: str) -> None:
    template = shipped_tiers()[tier]
    assert template.admin_group in {g.name for g in template.groups}
    assert template.summary()["has_admin_group"] is True


def test_summary_shows_policies_with_their_iam_spelling() -> None:
    summary = shipped_tiers()["premium"].summary()
    assert summary["name"] == "premium"
    statement = summary["authenticated_policy"][0]
    assert statement["Effect"] == "Allow"
    assert "${cognito-identity.amazonaws.com:sub}" in statement["Resource"][0]


def test_default_app_client_gets_the_required_flows() -> None:
    tiers = parse_tiers(doc(small=minimal()))
    assert set(REQUIRED_AUTH_FLOWS) <= set(tiers["small"].app_client.explicit_auth_flows)


# -- bad documents name the tier and the field --------------------------------------------------


def test_unknown_field_is_named() -> None:
    message = template_error(doc(gold=minimal(mfa_mode="ON")))
    assert "'gold'" in message and "mfa_mode" in message


def test_unknown_nested_field_is_named() -> None:
    message = template_error(doc(gold=minimal(password_policy={"min_len": 8})))
    assert "'gold'" in message and "password_policy.min_len" in message


def test_bad_enum_value_is_named() -> None:
    message = template_error(doc(gold=minimal(feature_plan="ULTRA")))
    assert "'gold'" in message and "feature_plan" in message


def test_bad_mfa_value_is_named() -> None:
    message = template_error(doc(gold=minimal(mfa="ALWAYS")))
    assert "'gold'" in message and "'mfa'" in message


def test_app_client_missing_a_required_auth_flow() -> None:
    message = template_error(doc(gold=minimal(app_client={"explicit_auth_flows": ["ALLOW_USER_SRP_AUTH"]})))
    assert "'gold'" in message
    assert "app_client.explicit_auth_flows" in message
    assert "ALLOW_REFRESH_TOKEN_AUTH" in message


def test_unknown_auth_flow_is_rejected() -> None:
    flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_EVERYTHING"]
    message = template_error(doc(gold=minimal(app_client={"explicit_auth_flows": flows})))
    assert "'gold'" in message and "explicit_auth_flows" in message


def test_admin_group_must_be_one_of_the_groups() -> None:
    message = template_error(doc(gold=minimal(groups=[{"name": "users"}], admin_group="admins")))
    assert "'gold'" in message and "admin_group" in message and "'admins'" in message


def test_guest_policy_without_guest_identities() -> None:
    body = minimal(allow_guest_identities=False, unauthenticated_policy=copy.deepcopy(AUTH_POLICY))
    message = template_error(doc(gold=body))
    assert "'gold'" in message and "unauthenticated_policy" in message


def test_guest_identities_without_guest_policy() -> None:
    message = template_error(doc(gold=minimal(allow_guest_identities=True)))
    assert "'gold'" in message and "unauthenticated_policy" in message


def test_unknown_placeholder_is_named() -> None:
    policy = copy.deepcopy(AUTH_POLICY)
    policy[0]["Resource"] = ["arn:aws:s3:::bucket/{{tenant}}/*"]
    message = template_error(doc(gold=minimal(authenticated_policy=policy)))
    assert "'gold'" in message and "authenticated_policy" in message and "{{tenant}}" in message


def test_unknown_placeholder_inside_a_condition_is_found() -> None:
    policy = copy.deepcopy(AUTH_POLICY)
    policy[0]["Condition"] = {"StringLike": {"dynamodb:LeadingKeys": ["{{customer}}#*"]}}
    message = template_error(doc(gold=minimal(authenticated_policy=policy)))
    assert "'gold'" in message and "{{customer}}" in message


def test_mfa_on_without_methods() -> None:
    message = template_error(doc(gold=minimal(mfa="ON")))
    assert "'gold'" in message and "mfa_methods" in message


def test_mfa_methods_with_mfa_off() -> None:
    message = template_error(doc(gold=minimal(mfa="OFF", mfa_methods=["TOTP"])))
    assert "'gold'" in message and "mfa_methods" in message


def test_username_and_alias_attributes_together() -> None:
    message = template_error(doc(gold=minimal(alias_attributes=["preferred_username"])))
    assert "'gold'" in message and "alias_attributes" in message


def test_duplicate_group_names() -> None:
    message = template_error(doc(gold=minimal(groups=[{"name": "a"}, {"name": "a"}])))
    assert "'gold'" in message and "groups" in message


def test_authenticated_policy_is_required() -> None:
    message = template_error(doc(gold={"description": "no policy"}))
    assert "'gold'" in message and "authenticated_policy" in message


def test_out_of_range_token_validity() -> None:
    message = template_error(doc(gold=minimal(tokens={"access_token_minutes": 2})))
    assert "'gold'" in message and "tokens.access_token_minutes" in message


def test_every_bad_tier_is_reported_not_just_the_first() -> None:
    message = template_error(doc(ok=minimal(), gold=minimal(mfa="ALWAYS"), silver=minimal(feature_plan="X")))
    assert "'gold'" in message and "'silver'" in message
    assert "'ok'" not in message


def test_tier_that_is_not_a_table() -> None:
    message = template_error(doc(gold="premium"))  # type: ignore[arg-type]
    assert "'gold'" in message


@pytest.mark.parametrize("data", [{}, {"tiers": {}}, {"tiers": "x"}, []])
def test_empty_or_shapeless_documents(data: Any) -> None:
    assert "[tiers]" in template_error(data)


def test_unknown_top_level_key() -> None:
    data = shipped_tiers_document()
    data["tier"] = {}
    assert "tier" in template_error(data)


def test_bad_tier_name() -> None:
    message = template_error(doc(**{"Gold Tier": minimal()}))
    assert "'Gold Tier'" in message and "name" in message


def test_editing_the_shipped_file_wrongly_names_the_tier() -> None:
    data = shipped_tiers_document()
    data["tiers"]["premium"]["admin_group"] = "owners"
    message = template_error(data)
    assert "'premium'" in message and "admin_group" in message
    assert "'basic'" not in message


# -- role policies must stay inside the tenant ----------------------------------------------------


def _policy_error(statement: dict[str, Any], field: str = "authenticated_policy") -> str:
    body = {"Sid": "Bad", "Effect": "Allow", "Action": ["s3:GetObject"], **statement}
    tier = minimal(**{field: [body]})
    if field == "unauthenticated_policy":
        tier["allow_guest_identities"] = True
    message = template_error(doc(gold=tier))
    assert "tier 'gold'" in message and f"field '{field}.0'" in message, message
    return message


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:s3:::saas-tenant-data/*",
        "arn:{{partition}}:dynamodb:{{region}}:{{account_id}}:table/saas-tenant-data",
        "arn:{{partition}}:s3:::bucket/{{region}}/*",
    ],
)
def test_a_resource_that_does_not_name_the_tenant_is_refused(resource: str) -> None:
    message = _policy_error({"Resource": [resource]})
    assert "not scoped to the tenant" in message and resource in message


def test_one_unscoped_resource_among_scoped_ones_is_refused() -> None:
    message = _policy_error(
        {"Resource": ["arn:aws:s3:::b/{{tenant_id}}/*", "arn:aws:s3:::b/shared/*"]}
    )
    assert "arn:aws:s3:::b/shared/*" in message


@pytest.mark.parametrize("resource", ["*", "arn:*", "s3:::bucket/{{tenant_id}}/*", "bucket/{{tenant_id}}"])
def test_a_resource_that_is_not_an_arn_is_refused(resource: str) -> None:
    message = _policy_error({"Resource": [resource]})
    assert "must be an ARN" in message
    assert "at least 1 item" not in message  # the bad statement is the problem, not the list's length


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("arn:*:s3:::b/{{tenant_id}}/*", "partition"),
        ("arn:aws:*:::b/{{tenant_id}}/*", "service"),
        ("arn:aws:dynamodb:*:{{account_id}}:table/{{tenant_id}}", "Region"),
        ("arn:aws:dynamodb:{{region}}:*:table/{{tenant_id}}", "account"),
        ("arn:aws:dynamodb:{{region}}:${aws:PrincipalAccount}:table/{{tenant_id}}", "account"),
    ],
)
def test_a_wildcard_outside_the_resource_part_is_refused(resource: str, field: str) -> None:
    assert field in _policy_error({"Resource": [resource]})


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:s3:::saas-tenant-data/{{tenant_id}}*",  # 'acme' would match 'acme-corp/...'
        "arn:aws:s3:::saas-tenant-data/{{tenant_id}}-*",
        "arn:aws:s3:::saas-tenant-data/{{tenant_id}}?/x",
        "arn:aws:s3:::saas-{{tenant_id}}-*/x",
        "arn:aws:s3:::b/{{tenant_id}}${aws:username}/*",
        "arn:aws:s3:::*/{{tenant_id}}/*",  # any bucket: 'other/acme/...' belongs to tenant 'other'
        "arn:aws:s3:::b/${aws:username}/{{tenant_id}}/*",
        "arn:aws:cognito-idp:{{region}}:{{account_id}}:userpool/{{user_pool_id}}*",
    ],
)
def test_a_tenant_value_that_would_match_other_tenants_is_refused(resource: str) -> None:
    message = _policy_error({"Resource": [resource]})
    assert "other tenants" in message


def test_the_unauthenticated_policy_is_checked_too() -> None:
    message = _policy_error({"Resource": ["arn:aws:s3:::saas-tenant-data/public/*"]}, "unauthenticated_policy")
    assert "not scoped to the tenant" in message


DYNAMO_TABLE = "arn:{{partition}}:dynamodb:{{region}}:{{account_id}}:table/saas-tenant-data"


@pytest.mark.parametrize(
    "operator",
    ["ForAnyValue:StringLike", "StringLikeIfExists", "ForAllValues:StringNotLike", "StringNotEquals"],
)
def test_a_condition_that_cannot_confine_does_not_scope_the_statement(operator: str) -> None:
    message = _policy_error(
        {"Action": ["dynamodb:GetItem"], "Resource": [DYNAMO_TABLE],
         "Condition": {operator: {"dynamodb:LeadingKeys": ["{{tenant_id}}#*"]}}}
    )
    assert "not scoped to the tenant" in message


def test_a_condition_value_must_delimit_the_tenant_id() -> None:
    message = _policy_error(
        {"Action": ["dynamodb:GetItem"], "Resource": [DYNAMO_TABLE],
         "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["{{tenant_id}}*"]}}}
    )
    assert "other tenants" in message


@pytest.mark.parametrize(
    "statement",
    [
        {"Resource": ["arn:{{partition}}:s3:::b/{{tenant_id}}/${cognito-identity.amazonaws.com:sub}/*"]},
        {"Resource": ["arn:aws:s3:::b/{{tenant_id}}"]},
        {"Resource": ["arn:aws:s3:::b/{{tenant_id}}#x", "arn:aws:s3:::b/{{tenant_id}}.json"]},
        {"Resource": ["arn:aws:s3:::saas-{{tenant_id}}-data/*"]},  # one bucket per tenant: no overlap
        {"Resource": ["{{user_pool_arn}}"], "Action": ["cognito-idp:ListUsers"]},
        {"Resource": ["arn:aws:cognito-identity:{{region}}:{{account_id}}:identitypool/{{identity_pool_id}}"]},
        {"Action": ["dynamodb:Query"], "Resource": [DYNAMO_TABLE],
         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["{{tenant_id}}"]}}},
        {"Effect": "Deny", "Action": ["s3:DeleteBucket"], "Resource": ["*"]},
        {"Resource": ["arn:aws:s3:::b/{{tenant_id}}/*"], "Condition": {"Bool": {"aws:SecureTransport": True},
                                                                       "NumericLessThan": {"s3:max-keys": 10}}},
    ],
)
def test_tenant_scoped_statements_are_accepted(statement: dict[str, Any]) -> None:
    body = {"Sid": "Ok", "Effect": "Allow", "Action": ["s3:GetObject"], **statement}
    tiers = parse_tiers(doc(gold=minimal(authenticated_policy=[body])))
    assert tiers["gold"].authenticated_policy[0].sid == "Ok"


def test_the_shipped_dynamodb_statement_is_scoped_by_its_leading_keys_condition() -> None:
    for tier in ("standard", "premium"):
        [rows] = [s for s in shipped_tiers()[tier].authenticated_policy if s.sid == "TenantRows"]
        assert rows.resource == (DYNAMO_TABLE,)
        assert rows.condition == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["{{tenant_id}}#*"]}}
