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
