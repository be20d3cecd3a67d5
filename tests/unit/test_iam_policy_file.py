"""deploy/iam-policy.json must allow every AWS action the adapters call and nothing else, on the
narrowest resources, with the ownership-tag and permissions-boundary conditions AWS evaluates.

Read from the source here; tests/integration/test_least_privilege.py records the operations a
real run sends and runs one against an emulator that enforces the policy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = {"cognito-idp": "cognito-idp", "cognito-identity": "cognito-identity", "iam": "iam", "secretsmanager": "secretsmanager"}


def _allowed() -> set[str]:
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    return actions


def _called() -> set[str]:
    source = (ROOT / "adapters" / "aws" / "gateways.py").read_text()
    calls = set()
    # aws_call(self._idp(cell), "Operation", ...) possibly across lines
    for helper, operation in re.findall(r"(?:aws_call|_listed)\(\s*self\._(idp|identity|iam|sm)\(cell(?:, retries=False)?\),\s*\"([A-Za-z]+)\"", source):
        service = {"idp": "cognito-idp", "identity": "cognito-identity", "iam": "iam", "sm": "secretsmanager"}[helper]
        calls.add(f"{service}:{operation}")
    # Lifecycle events: aws_call(self._aws.client("events"), "PutEvents", ...)
    events = (ROOT / "adapters" / "events" / "eventbridge.py").read_text()
    for operation in re.findall(r"aws_call\(\s*self\._aws\.client\(\"events\"\),\s*\"([A-Za-z]+)\"", events):
        calls.add(f"events:{operation}")
    return calls


def test_the_policy_allows_every_action_the_adapters_call() -> None:
    called = _called()
    assert len(called) >= 25, called  # the regex really finds the calls
    missing = called - _allowed()
    assert not missing, f"deploy/iam-policy.json lacks {sorted(missing)}"


# IAM actions that take no resource (Resource "*"): each must sit in a statement of its own so
# that no role action is granted account-wide along with it.
ACCOUNT_WIDE_IAM = {"iam:ListRoles"}


# A role that does not exist yet has no path, so IAM authorizes the lookup before CreateRole (and
# the one teardown makes for a role never created) against arn:...:role/<name>: those reads, and
# nothing else, are granted on the tenant roles' names too.
LOOKUP_BEFORE_CREATE = {"iam:GetRole", "iam:ListRoleTags"}


def test_role_actions_are_confined_to_the_service_role_path() -> None:
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if len(actions) == 1 and actions[0] in ACCOUNT_WIDE_IAM:
            assert statement["Resource"] == "*"
            assert "Condition" not in statement
        elif statement["Resource"] == "arn:aws:iam::ACCOUNT_ID:role/tenants-*":
            assert set(actions) <= LOOKUP_BEFORE_CREATE, statement
        elif any(a.startswith("iam:") for a in actions):
            assert statement["Resource"] == "arn:aws:iam::ACCOUNT_ID:role/tenants/*"


# The one kind of secret the service reads back: a tenant identity provider's client secret, on its
# way to Create/UpdateIdentityProvider or compared with a repeated POST's. App client secrets
# (tenants/<id>/app-client/...) are read from Cognito to be copied, never back from Secrets Manager
# (tests/integration/test_least_privilege.py checks the SecretId of every GetSecretValue sent).
IDP_SECRETS = "arn:aws:secretsmanager:*:ACCOUNT_ID:secret:tenants/*/idp/*"


def test_secrets_are_confined_to_tenant_secrets_and_only_idp_secrets_read() -> None:
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    secret_statements = [
        st for st in policy["Statement"] if any(a.startswith("secretsmanager:") for a in _actions(st))
    ]
    assert {"secretsmanager:CreateSecret", "secretsmanager:DeleteSecret"} <= {a for st in secret_statements for a in _actions(st)}
    for statement in secret_statements:
        if _actions(statement) == ["secretsmanager:ListSecrets"]:
            assert statement["Resource"] == "*"  # ListSecrets takes no resource; alone in its statement
            continue
        if _actions(statement) == ["secretsmanager:GetSecretValue"]:
            assert statement["Resource"] == IDP_SECRETS, statement
            continue
        # The trailing * also covers the "-" and six random characters AWS appends to a secret's ARN.
        assert statement["Resource"] == "arn:aws:secretsmanager:*:ACCOUNT_ID:secret:tenants/*", statement
    granted = {a for st in policy["Statement"] for a in _actions(st)}
    assert not granted & {"secretsmanager:*", "secretsmanager:BatchGetSecretValue"}
    assert all(st["Resource"] == IDP_SECRETS for st in _granting("secretsmanager:GetSecretValue"))
    assert {"secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret"} <= _called()


def _actions(statement: dict[str, object]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)  # type: ignore[arg-type]


# -- exactness, resources and conditions -----------------------------------------------------------

POLICY_FILE = ROOT / "deploy" / "iam-policy.json"
MANAGED_BY = "tenant-identity-provisioner"
# Actions the adapters never name but AWS checks along with one they do, each with the call.
IMPLIED = {
    "iam:TagRole": "CreateRole with Tags",
    "iam:PassRole": "SetIdentityPoolRoles hands the roles to Cognito Identity",
    "cognito-idp:TagResource": "CreateUserPool with UserPoolTags",
    "cognito-identity:TagResource": "CreateIdentityPool with IdentityPoolTags",
    "secretsmanager:TagResource": "CreateSecret with Tags",
}
# Actions that take no resource in IAM's Service Authorization Reference: only these get "*".
NO_RESOURCE = {
    "cognito-idp:CreateUserPool",
    "cognito-idp:ListUserPools",
    "cognito-idp:DescribeUserPoolDomain",
    "cognito-idp:TagResource",
    "cognito-identity:CreateIdentityPool",
    "cognito-identity:ListIdentityPools",
    "cognito-identity:TagResource",
    "iam:ListRoles",
    "secretsmanager:ListSecrets",
}


def _statements() -> list[dict[str, Any]]:
    return list(json.loads(POLICY_FILE.read_text())["Statement"])


def _granting(action: str) -> list[dict[str, Any]]:
    return [st for st in _statements() if action in _actions(st)]


def test_the_policy_grants_nothing_the_adapters_do_not_need() -> None:
    needless = _allowed() - _called() - set(IMPLIED)
    assert not needless, f"deploy/iam-policy.json grants {sorted(needless)}, which no adapter calls"
    assert set(IMPLIED) <= _allowed()


def test_no_statement_uses_wildcard_actions_or_not_elements() -> None:
    for statement in _statements():
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
        assert all("*" not in a for a in _actions(statement)), statement


def test_only_actions_without_resources_are_granted_on_every_resource() -> None:
    for statement in _statements():
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        for resource in resources:
            if resource == "*":
                assert set(_actions(statement)) <= NO_RESOURCE, statement
                continue
            _, partition, service, region, account, rest = resource.split(":", 5)
            assert partition == "aws" and account == "ACCOUNT_ID" and rest and rest != "*", statement
            assert all(a.split(":")[0] == service for a in _actions(statement)), statement


def test_roles_are_created_only_inside_the_boundary_and_with_the_ownership_tag() -> None:
    [create] = _granting("iam:CreateRole")
    assert create["Condition"] == {
        "StringEquals": {"iam:PermissionsBoundary": "PERMISSIONS_BOUNDARY_ARN", "aws:RequestTag/tenants:managed-by": MANAGED_BY}
    }
    [rebind] = _granting("iam:PutRolePermissionsBoundary")
    assert rebind["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == "PERMISSIONS_BOUNDARY_ARN"
    assert rebind["Condition"]["StringEquals"]["aws:ResourceTag/tenants:managed-by"] == MANAGED_BY
    [tag] = _granting("iam:TagRole")
    assert tag["Condition"] == {"StringEquals": {"aws:RequestTag/tenants:managed-by": MANAGED_BY}}
    assert not _granting("iam:DeleteRolePermissionsBoundary")  # a boundary, once set, stays


def test_roles_are_changed_or_deleted_only_when_they_carry_the_ownership_tag() -> None:
    for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DeleteRole"):
        for statement in _granting(action):
            assert statement["Condition"]["StringEquals"]["aws:ResourceTag/tenants:managed-by"] == MANAGED_BY, action


def test_identity_pools_and_secrets_are_created_only_with_the_ownership_tag() -> None:
    for action in ("cognito-identity:CreateIdentityPool", "secretsmanager:CreateSecret"):
        [statement] = _granting(action)
        assert statement["Condition"] == {"StringEquals": {"aws:RequestTag/tenants:managed-by": MANAGED_BY}}, action


def test_tenant_roles_are_passed_to_cognito_only() -> None:
    # To identity pools (SetIdentityPoolRoles) and to user pool groups (UpdateGroup RoleArn).
    [passing] = _granting("iam:PassRole")
    assert passing["Resource"] == "arn:aws:iam::ACCOUNT_ID:role/tenants/*"
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["cognito-identity.amazonaws.com", "cognito-idp.amazonaws.com"]}
    }


def test_the_placeholders_are_the_documented_ones() -> None:
    text = POLICY_FILE.read_text()
    assert set(re.findall(r"\b[A-Z][A-Z_]{5,}\b", text)) == {"ACCOUNT_ID", "PERMISSIONS_BOUNDARY_ARN", "EVENT_BUS_NAME"}
    readme = (ROOT / "README.md").read_text()
    assert "ACCOUNT_ID" in readme and "PERMISSIONS_BOUNDARY_ARN" in readme and "EVENT_BUS_NAME" in readme
