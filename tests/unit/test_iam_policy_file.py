"""deploy/iam-policy.json must allow every AWS action the adapters call."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = {"cognito-idp": "cognito-idp", "cognito-identity": "cognito-identity", "iam": "iam"}


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
    for helper, operation in re.findall(r"(?:aws_call|_listed)\(\s*self\._(idp|identity|iam)\(cell(?:, retries=False)?\),\s*\"([A-Za-z]+)\"", source):
        service = {"idp": "cognito-idp", "identity": "cognito-identity", "iam": "iam"}[helper]
        calls.add(f"{service}:{operation}")
    return calls


def test_the_policy_allows_every_action_the_adapters_call() -> None:
    called = _called()
    assert len(called) >= 25, called  # the regex really finds the calls
    missing = called - _allowed()
    assert not missing, f"deploy/iam-policy.json lacks {sorted(missing)}"


# IAM actions that take no resource (Resource "*"): each must sit in a statement of its own so
# that no role action is granted account-wide along with it.
ACCOUNT_WIDE_IAM = {"iam:ListRoles"}


def test_role_actions_are_confined_to_the_service_role_path() -> None:
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if len(actions) == 1 and actions[0] in ACCOUNT_WIDE_IAM:
            assert statement["Resource"] == "*"
            assert "Condition" not in statement
        elif any(a.startswith("iam:") for a in actions):
            assert statement["Resource"] == "arn:aws:iam::ACCOUNT_ID:role/tenants/*"
