"""Tenant isolation in IAM: every role policy and trust policy of every shipped tier, rendered for
awkward but valid tenant ids, names only that tenant's resources.

The documents are rendered by the domain code the provisioning steps use (ResourceNames,
render_role_policy, trust_policy), serialised to JSON as they are sent to IAM, parsed back and
checked as data. "Another tenant's resource" is checked the way IAM would: each Resource (and each
dynamodb:LeadingKeys pattern) is turned into a matcher with IAM's wildcard rules and must not match
any concrete resource of any other tenant.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from domain.naming import TENANT_ID_PATTERN, ResourceNames, validate_tenant_id
from domain.policies import render_role_policy, trust_policy
from domain.tiers import TierTemplate
from tests.unit.fakes import shipped_tiers

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
TIERS = shipped_tiers()
KINDS = {"auth": "authenticated", "unauth": "unauthenticated"}

# Valid ids chosen to trip naive checks: prefixes of one another, ids that are words of the
# templates themselves, repeated letters, hyphens everywhere, the longest id allowed.
NASTY_IDS = [
    "acme",
    "acme-corp",
    "acme-corp-eu",
    "acm",
    "acme0",
    "a-b",
    "a-b-c",
    "aaa",
    "aaaa",
    "star",
    "public",
    "saas",
    "tenant",
    "data",
    "auth",
    "unauth",
    "laws-firm",
    "x" * 40,
    "x" * 39,
    "a" + "-b" * 19,
    "z" + "9" * 39,
]
# Characters that can occur inside a tenant id: a match that ends next to one of them is a prefix
# or suffix match, not the id itself.
ID_CHARS = "a-z0-9-"


@dataclass(frozen=True)
class TenantDocs:
    tenant_id: str
    user_pool_id: str
    identity_pool_id: str
    role_policies: dict[str, dict[str, Any]]  # kind -> parsed policy document
    trust_policies: dict[str, dict[str, Any]]  # kind -> parsed trust policy
    names: ResourceNames


def pool_ids(tenant_id: str) -> tuple[str, str]:
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()
    user_pool = f"{REGION}_{digest[:9]}"
    identity_pool = f"{REGION}:{uuid.UUID(digest[:32])}"
    return user_pool, identity_pool


def as_sent(document: dict[str, Any]) -> dict[str, Any]:
    """What IAM receives (the gateways send compact JSON), parsed back."""
    return json.loads(json.dumps(document, separators=(",", ":")))


def render(template: TierTemplate, tenant_id: str, prefix: str = "tenants") -> TenantDocs:
    names = ResourceNames(prefix, tenant_id)
    user_pool, identity_pool = pool_ids(tenant_id)
    values = {
        "tenant_id": tenant_id,
        "partition": PARTITION,
        "region": REGION,
        "account_id": ACCOUNT,
        "user_pool_id": user_pool,
        "user_pool_arn": f"arn:{PARTITION}:cognito-idp:{REGION}:{ACCOUNT}:userpool/{user_pool}",
        "identity_pool_id": identity_pool,
    }
    kinds = ["auth", "unauth"] if template.allow_guest_identities else ["auth"]
    policies = {
        kind: as_sent(
            render_role_policy(template.authenticated_policy if kind == "auth" else template.unauthenticated_policy, values)
        )
        for kind in kinds
    }
    trusts = {kind: as_sent(trust_policy(identity_pool, authenticated=kind == "auth")) for kind in kinds}
    return TenantDocs(tenant_id, user_pool, identity_pool, policies, trusts, names)


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def segment_re(value: str) -> re.Pattern[str]:
    """``value`` as a whole: not preceded or followed by a character a tenant id can contain."""
    return re.compile(rf"(?<![{ID_CHARS}]){re.escape(value)}(?![{ID_CHARS}])")


def iam_matcher(pattern: str) -> re.Pattern[str]:
    """IAM's string matching for Resource and StringLike: ``*`` any run of characters, ``?`` one,
    ``${...}`` a request value (taken as anything: the widest it can be)."""
    out = []
    for token in re.split(r"(\$\{[^}]*\}|\*|\?)", pattern):
        if token in ("*",) or token.startswith("${"):
            out.append(".*")
        elif token == "?":
            out.append(".")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out), re.DOTALL)


def concrete(pattern: str) -> list[str]:
    """Resources a pattern grants, with wildcards and variables filled in several ways."""
    fills = ["k", "x/y", "us-east-1:0000", "-corp/z"]
    return [re.sub(r"\$\{[^}]*\}|\*|\?", fill, pattern) for fill in fills]


def leading_keys(statement: dict[str, Any]) -> list[tuple[str, str]]:
    """(operator, pattern) of every dynamodb:LeadingKeys condition of a statement."""
    found = []
    for operator, keys in statement.get("Condition", {}).items():
        for key, value in keys.items():
            if key == "dynamodb:LeadingKeys":
                found += [(operator, v) for v in listed(value)]
    return found


def arn_fields(resource: str) -> list[str]:
    parts = resource.split(":", 5)
    assert len(parts) == 6 and parts[0] == "arn", f"{resource!r} is not an ARN"
    return parts


def assert_confined(docs: TenantDocs) -> None:
    """Every Allow of every role policy reaches only this tenant's resources."""
    own = [docs.tenant_id, docs.user_pool_id, docs.identity_pool_id]
    for kind, policy in docs.role_policies.items():
        assert policy["Version"] == "2012-10-17"
        assert policy["Statement"], kind
        for statement in policy["Statement"]:
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
            if statement["Effect"] != "Allow":
                continue
            keys = leading_keys(statement)
            scoped_by_condition = bool(keys) and all(
                op in ("ForAllValues:StringLike", "ForAllValues:StringEquals")
                and re.fullmatch(rf"{re.escape(docs.tenant_id)}(#.*)?", pattern)
                for op, pattern in keys
            )
            for resource in listed(statement["Resource"]):
                assert resource != "*", statement
                _, partition, service, region, account, rest = arn_fields(resource)
                assert partition == PARTITION and service and "*" not in service
                assert region in (REGION, ""), resource
                assert account in (ACCOUNT, ""), resource
                if scoped_by_condition:
                    continue
                # The tenant's own id (or pool id) as a whole, with nothing wild before it and a
                # "/" between it and any wildcard after it.
                hits = [m for value in own for m in segment_re(value).finditer(rest)]
                assert hits, f"{resource!r} names none of {own}"
                for m in hits:
                    before, after = rest[: m.start()], rest[m.end() :]
                    assert "*" not in before and "${" not in before, resource
                    assert after == "" or after[0] == "/", f"{resource!r}: prefix match on {m.group(0)!r}"


def assert_trust_is_pinned(docs: TenantDocs) -> None:
    for kind, trust in docs.trust_policies.items():
        assert trust["Version"] == "2012-10-17"
        [statement] = trust["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {"cognito-identity.amazonaws.com:aud": docs.identity_pool_id},
            "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": KINDS[kind]},
        }


def assert_names_carry_the_tenant(docs: TenantDocs) -> None:
    for kind in docs.role_policies:
        role, policy = docs.names.role(kind), docs.names.role_policy(kind)
        assert role == f"{docs.names.prefix}-{docs.tenant_id}-{kind}" and len(role) <= 64
        assert policy == f"{role}-policy"


def assert_no_overlap(a: TenantDocs, b: TenantDocs) -> None:
    """Nothing ``a`` is granted is a resource (or a DynamoDB key) of ``b``."""
    assert a.tenant_id != b.tenant_id
    b_resources = [
        r
        for policy in b.role_policies.values()
        for s in policy["Statement"]
        for pattern in listed(s["Resource"])
        for r in concrete(pattern)
    ]
    b_keys = [
        k for policy in b.role_policies.values() for s in policy["Statement"] for _, p in leading_keys(s) for k in concrete(p)
    ]
    for policy in a.role_policies.values():
        for statement in policy["Statement"]:
            keys = leading_keys(statement)
            for resource in listed(statement["Resource"]):
                matcher = iam_matcher(resource)
                if keys:
                    # A condition-scoped statement may share the resource (one table for all
                    # tenants); it is the row keys that must not overlap.
                    continue
                leaked = [r for r in b_resources if matcher.fullmatch(r)]
                assert not leaked, f"{a.tenant_id}'s {resource!r} reaches {b.tenant_id}'s {leaked}"
            for _, pattern in keys:
                leaked = [k for k in b_keys if iam_matcher(pattern).fullmatch(k)]
                assert not leaked, f"{a.tenant_id}'s LeadingKeys {pattern!r} reaches {b.tenant_id}'s {leaked}"
    # The trust policies admit different identity pools.
    for kind in a.trust_policies.keys() & b.trust_policies.keys():
        assert a.trust_policies[kind] != b.trust_policies[kind]


def template_words(template: TierTemplate) -> set[str]:
    text = json.dumps([s.as_document() for s in (*template.authenticated_policy, *template.unauthenticated_policy)])
    return set(re.findall(rf"[{ID_CHARS}]+", text))


def assert_names_no_other_tenant(docs: TenantDocs, others: list[str], template: TierTemplate) -> None:
    """Another tenant's id appears nowhere, unless it is a word of the template itself (a tenant
    called "public" is not named by ".../acme/public/*")."""
    text = json.dumps([*docs.role_policies.values(), *docs.trust_policies.values()])
    words = template_words(template)
    for other in others:
        if other == docs.tenant_id or other in words:
            continue
        assert not segment_re(other).search(text), f"{docs.tenant_id}'s documents name tenant {other!r}"


# -- the tests ----------------------------------------------------------------------------------


def test_the_nasty_ids_are_valid_tenant_ids() -> None:
    for tenant_id in NASTY_IDS:
        assert validate_tenant_id(tenant_id) == tenant_id
    assert re.fullmatch(TENANT_ID_PATTERN, "x" * 40) and not re.fullmatch(TENANT_ID_PATTERN, "x" * 41)


@pytest.mark.parametrize("tier", sorted(TIERS))
@pytest.mark.parametrize("tenant_id", NASTY_IDS)
def test_every_role_policy_names_only_the_tenants_resources(tier: str, tenant_id: str) -> None:
    docs = render(TIERS[tier], tenant_id)
    assert set(docs.role_policies) == ({"auth", "unauth"} if TIERS[tier].allow_guest_identities else {"auth"})
    assert_confined(docs)
    assert_trust_is_pinned(docs)
    assert_names_carry_the_tenant(docs)
    assert_names_no_other_tenant(docs, NASTY_IDS, TIERS[tier])


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_no_tenant_reaches_another_tenants_resources(tier: str) -> None:
    rendered = {tenant_id: render(TIERS[tier], tenant_id) for tenant_id in NASTY_IDS}
    for a, b in itertools.permutations(NASTY_IDS, 2):
        assert_no_overlap(rendered[a], rendered[b])


def test_role_and_policy_names_never_collide_across_tenants() -> None:
    # IAM role names are unique per account case-insensitively; two tenants sharing one would
    # share a role (adoption would refuse it, but onboarding would fail).
    seen: dict[str, str] = {}
    for prefix in ("tenants", "abcdefghijklmnop"):
        for tenant_id in NASTY_IDS:
            names = ResourceNames(prefix, tenant_id)
            for kind in KINDS:
                for name in (names.role(kind), names.role_policy(kind)):
                    assert len(names.role(kind)) <= 64
                    owner = seen.setdefault(name.lower(), f"{prefix}/{tenant_id}")
                    assert owner == f"{prefix}/{tenant_id}", f"{name} of {tenant_id} collides with {owner}"


def test_the_checks_catch_a_prefix_match() -> None:
    """The assertions above are not vacuous: a policy written with a prefix match fails them."""
    docs = render(TIERS["basic"], "acme")
    widened = json.loads(json.dumps(docs.role_policies).replace("saas-tenant-data/acme/", "saas-tenant-data/acme*"))
    bad = TenantDocs(docs.tenant_id, docs.user_pool_id, docs.identity_pool_id, widened, docs.trust_policies, docs.names)
    with pytest.raises(AssertionError, match="prefix match"):
        assert_confined(bad)
    with pytest.raises(AssertionError, match="reaches acme-corp"):
        assert_no_overlap(bad, render(TIERS["basic"], "acme-corp"))
    keys = render(TIERS["standard"], "acme")
    loose = json.loads(json.dumps(keys.role_policies).replace('"acme#*"', '"acme*"'))
    with pytest.raises(AssertionError, match="LeadingKeys"):
        assert_no_overlap(
            TenantDocs("acme", keys.user_pool_id, keys.identity_pool_id, loose, keys.trust_policies, keys.names),
            render(TIERS["standard"], "acme-corp"),
        )


def random_tenant_ids(rng: random.Random, count: int) -> list[str]:
    """Valid tenant ids, biased towards short ones and ones that extend another id."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    ids: list[str] = []
    while len(ids) < count:
        if ids and rng.random() < 0.3:
            base = rng.choice(ids)
            candidate = (base + rng.choice(["-", ""]) + rng.choice("abc019"))[:40]
        else:
            length = rng.choice([3, 3, 4, 5, 8, 13, 40])
            body = "".join(rng.choice(alphabet + "--") for _ in range(length - 2))
            candidate = rng.choice("abcxyz") + body + rng.choice(alphabet)
        if re.fullmatch(TENANT_ID_PATTERN, candidate) and "--" not in candidate and candidate not in ids:
            ids.append(candidate)
    return ids


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_property_many_generated_ids_stay_confined(tier: str) -> None:
    # hypothesis is not a dependency; a seeded generator gives the same ids on every run.
    rng = random.Random(f"isolation-{tier}")
    ids = random_tenant_ids(rng, 300)
    rendered = {tenant_id: render(TIERS[tier], tenant_id) for tenant_id in ids}
    for docs in rendered.values():
        assert_confined(docs)
        assert_trust_is_pinned(docs)
        assert_names_carry_the_tenant(docs)
    # Every id against the ids it extends or is extended by, and a random sample of the rest.
    pairs = [(a, b) for a, b in itertools.permutations(ids, 2) if a.startswith(b) or b.startswith(a)]
    pairs += rng.sample(list(itertools.permutations(ids, 2)), 2000)
    assert any(a.startswith(b) for a, b in pairs)
    for a, b in pairs:
        assert_no_overlap(rendered[a], rendered[b])
