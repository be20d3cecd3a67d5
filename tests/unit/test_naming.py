"""Naming rules: which tenant ids are accepted, and that every derived name is one AWS accepts."""

from __future__ import annotations

import random
import re
import string

import pytest

from domain.errors import InvalidInput
from domain.naming import (
    MANAGED_BY_VALUE,
    TAG_MANAGED_BY,
    TAG_TENANT_ID,
    ResourceNames,
    is_owned_by,
    is_valid_iam_path,
    is_valid_prefix_domain,
    is_valid_role_name,
    ownership_tags,
    validate_resource_prefix,
    validate_tenant_id,
)

# The botocore / AWS-FACTS.md patterns, written out independently of the module under test.
COGNITO_NAME = re.compile(r"^[\w\s+=,.@-]{1,128}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
PREFIX_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$")
FORBIDDEN = ("aws", "amazon", "cognito")


def random_tenant_ids(count: int, seed: int = 7) -> list[str]:
    """Valid tenant ids of every length, some with forbidden words spliced in."""
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    ids: list[str] = []
    while len(ids) < count:
        length = rng.randint(3, 40)
        chars = [rng.choice(string.ascii_lowercase)]
        while len(chars) < length - 1:
            chars.append(rng.choice(alphabet + "-") if chars[-1] != "-" else rng.choice(alphabet))
        chars.append(rng.choice(alphabet))
        candidate = "".join(chars)
        if rng.random() < 0.4:
            word = rng.choice(FORBIDDEN)
            at = rng.randint(1, max(1, len(candidate) - len(word) - 1))
            candidate = (candidate[:at] + word + candidate[at + len(word) :])[:40]
            if candidate.endswith("-"):
                candidate = candidate[:-1] + "z"
        try:
            ids.append(validate_tenant_id(candidate))
        except InvalidInput:
            continue
    return ids


# -- tenant ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant_id",
    ["abc", "a" * 40, "acme", "acme-corp", "a1b", "t-1", "x9-y8-z7", "a" + "b" * 38 + "9", "laws-firm"],
)
def test_tenant_id_accepted(tenant_id: str) -> None:
    assert validate_tenant_id(tenant_id) == tenant_id


@pytest.mark.parametrize(
    "tenant_id",
    [
        "ab",  # too short (2)
        "a" * 41,  # too long (41)
        "",
        "Acme",  # upper case
        "acmE",
        "acme-",  # trailing hyphen
        "-acme",
        "acme--corp",  # double hyphen
        "1acme",  # must start with a letter
        "acme_corp",
        "acme.corp",
        "acme corp",
        "acme\n",
        "ac/me",
        "acmé",
        "ａｃｍｅ",  # full-width letters
    ],
)
def test_tenant_id_rejected(tenant_id: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_tenant_id(tenant_id)
    assert caught.value.field == "tenant_id"
    assert caught.value.code == "invalid_input"


def test_length_bounds_are_exactly_3_and_40() -> None:
    assert validate_tenant_id("a" * 3)
    assert validate_tenant_id("a" * 40)
    for bad in ("a" * 2, "a" * 41):
        with pytest.raises(InvalidInput):
            validate_tenant_id(bad)


@pytest.mark.parametrize("prefix", ["tenants", "ab", "t1", "a" * 16, "my-saas"])
def test_resource_prefix_accepted(prefix: str) -> None:
    assert validate_resource_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["a", "a" * 17, "Tenants", "1abc", "abc-", "ab_c"])
def test_resource_prefix_rejected(prefix: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_resource_prefix(prefix)
    assert caught.value.field == "resource_prefix"


def test_resource_names_reject_a_bad_tenant_id() -> None:
    with pytest.raises(InvalidInput) as caught:
        ResourceNames("tenants", "Bad_Id")
    assert caught.value.field == "tenant_id"


# -- derived names ------------------------------------------------------------------------------


def test_derived_names_are_deterministic_and_distinct_per_tenant() -> None:
    a1, a2, b = ResourceNames("tenants", "acme"), ResourceNames("tenants", "acme"), ResourceNames("tenants", "acme-b")
    assert (a1.user_pool, a1.app_client, a1.role("auth"), a1.hosted_ui_domain) == (
        a2.user_pool,
        a2.app_client,
        a2.role("auth"),
        a2.hosted_ui_domain,
    )
    assert a1.user_pool == "tenants-acme"
    assert a1.role("auth") == "tenants-acme-auth" and a1.role("unauth") == "tenants-acme-unauth"
    assert a1.role("auth") != b.role("auth")
    assert a1.role("auth").lower() != a1.role("unauth").lower()  # IAM names are case-insensitive


def test_longest_names_still_satisfy_iam_role_rules() -> None:
    names = ResourceNames("a" * 16, "b" * 40)
    for kind in ("auth", "unauth"):
        role = names.role(kind)
        assert len(role) <= 64
        assert ROLE_NAME.fullmatch(role)
        assert is_valid_role_name(role)
        assert len(names.role_policy(kind)) <= 128
    for name in (names.user_pool, names.app_client, names.identity_pool):
        assert COGNITO_NAME.fullmatch(name)


def test_default_prefix_and_40_char_id_fit_in_64() -> None:
    names = ResourceNames("tenants", "z" * 40)
    assert len(names.role("unauth")) <= 64


def test_every_derived_name_is_valid_for_many_ids() -> None:
    for tenant_id in random_tenant_ids(400):
        for prefix in ("tenants", "a" * 16, "ab"):
            names = ResourceNames(prefix, tenant_id)
            for kind in ("auth", "unauth"):
                assert ROLE_NAME.fullmatch(names.role(kind)), names.role(kind)
            assert COGNITO_NAME.fullmatch(names.user_pool)
            assert COGNITO_NAME.fullmatch(names.app_client)
            assert COGNITO_NAME.fullmatch(names.identity_pool)


# -- hosted-UI domain -----------------------------------------------------------------------------


def _valid_domain(domain: str) -> bool:
    return bool(PREFIX_DOMAIN.fullmatch(domain)) and not any(word in domain for word in FORBIDDEN)


def test_hosted_ui_domain_is_prefix_and_tenant_when_allowed() -> None:
    assert ResourceNames("tenants", "acme").hosted_ui_domain == "tenants-acme"


@pytest.mark.parametrize("tenant_id", ["laws-firm", "amazonia", "cognito-labs", "my-aws", "xawsx", "jaws"])
def test_hosted_ui_domain_falls_back_to_a_hash_for_forbidden_words(tenant_id: str) -> None:
    domain = ResourceNames("tenants", tenant_id).hosted_ui_domain
    assert tenant_id not in domain
    assert domain.startswith("tenants-t-")
    assert _valid_domain(domain)


def test_hash_fallback_is_stable_and_distinct_per_tenant() -> None:
    one = ResourceNames("tenants", "laws-firm").hosted_ui_domain
    assert ResourceNames("tenants", "laws-firm").hosted_ui_domain == one
    assert ResourceNames("tenants", "laws-firm2").hosted_ui_domain != one


def test_hosted_ui_domain_is_always_a_valid_prefix_domain() -> None:
    seen: dict[str, str] = {}
    for tenant_id in random_tenant_ids(1500) + ["aws", "amazon", "cognito", "a" * 40, "awsawsaws"]:
        for prefix in ("tenants", "a" * 16, "ab"):
            domain = ResourceNames(prefix, tenant_id).hosted_ui_domain
            assert _valid_domain(domain), (prefix, tenant_id, domain)
            assert is_valid_prefix_domain(domain)
            # Two tenants never share a domain under one prefix.
            key = f"{prefix}/{domain}"
            assert seen.setdefault(key, tenant_id) == tenant_id, (tenant_id, seen[key])


def test_prefix_that_cannot_form_a_domain_is_reported_as_the_prefix() -> None:
    with pytest.raises(InvalidInput) as caught:
        _ = ResourceNames("aws-tenants", "laws-firm").hosted_ui_domain
    assert caught.value.field == "resource_prefix"


@pytest.mark.parametrize(
    ("domain", "valid"),
    [
        ("tenants-acme", True),
        ("a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-acme", False),
        ("acme-", False),
        ("Acme", False),
        ("my-aws-x", False),
        ("amazonia", False),
        ("cognitoish", False),
        ("acme.corp", False),
    ],
)
def test_is_valid_prefix_domain(domain: str, valid: bool) -> None:
    assert is_valid_prefix_domain(domain) is valid


@pytest.mark.parametrize(
    ("path", "valid"),
    [("/", True), ("/tenants/", True), ("/a/b/", True), ("tenants/", False), ("/tenants", False), ("//", False),
     ("/" + "a" * 510 + "/", True), ("/" + "a" * 511 + "/", False)],
)
def test_is_valid_iam_path(path: str, valid: bool) -> None:
    assert is_valid_iam_path(path) is valid


@pytest.mark.parametrize(("name", "valid"), [("a", True), ("a" * 64, True), ("a" * 65, False), ("a b", False),
                                             ("a/b", False), ("é", False), ("a+=,.@-_", True), ("", False)])
def test_is_valid_role_name(name: str, valid: bool) -> None:
    assert is_valid_role_name(name) is valid


# -- ownership tags -------------------------------------------------------------------------------


def test_ownership_tags_identify_the_tenant_and_the_service() -> None:
    tags = ownership_tags("acme")
    assert tags == {TAG_TENANT_ID: "acme", TAG_MANAGED_BY: MANAGED_BY_VALUE}
    assert is_owned_by(tags, "acme")


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {TAG_TENANT_ID: "acme"},  # missing managed-by
        {TAG_MANAGED_BY: MANAGED_BY_VALUE},  # missing tenant
        {TAG_TENANT_ID: "acme-corp", TAG_MANAGED_BY: MANAGED_BY_VALUE},  # another tenant
        {TAG_TENANT_ID: "acme", TAG_MANAGED_BY: "someone-else"},
        {TAG_TENANT_ID: "ACME", TAG_MANAGED_BY: MANAGED_BY_VALUE},
    ],
)
def test_resources_without_exactly_our_tags_are_not_ours(tags: dict[str, str]) -> None:
    assert not is_owned_by(tags, "acme")


def test_extra_tags_do_not_break_ownership() -> None:
    assert is_owned_by({**ownership_tags("acme"), "cost-center": "42"}, "acme")
