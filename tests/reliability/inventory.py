"""What the emulator holds that carries the service's ownership tag, by tenant."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID
from tests.helpers import _listed, boto


@dataclass
class Owned:
    user_pools: list[str] = field(default_factory=list)
    identity_pools: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # ARNs
    app_clients: int = 0
    groups: int = 0
    users: int = 0
    domains: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # Secrets Manager ARNs

    def empty(self) -> bool:
        return not (self.user_pools or self.identity_pools or self.roles or self.domains or self.secrets)


def owned_inventory(endpoint: str) -> dict[str, Owned]:
    found: dict[str, Owned] = defaultdict(Owned)
    idp = boto("cognito-idp", endpoint)
    for summary in _listed(idp, "list_user_pools", "UserPools"):
        pool = idp.describe_user_pool(UserPoolId=summary["Id"])["UserPool"]
        tenant = _tenant(pool.get("UserPoolTags") or {})
        if tenant is None:
            continue
        owned = found[tenant]
        owned.user_pools.append(pool["Id"])
        owned.app_clients += len(idp.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)["UserPoolClients"])
        owned.groups += len(idp.list_groups(UserPoolId=pool["Id"])["Groups"])
        owned.users += len(idp.list_users(UserPoolId=pool["Id"])["Users"])
        if pool.get("Domain"):
            owned.domains.append(pool["Domain"])
    identity = boto("cognito-identity", endpoint)
    for summary in _listed(identity, "list_identity_pools", "IdentityPools"):
        pool = identity.describe_identity_pool(IdentityPoolId=summary["IdentityPoolId"])
        tenant = _tenant(pool.get("IdentityPoolTags") or {})
        if tenant is not None:
            found[tenant].identity_pools.append(pool["IdentityPoolId"])
    iam = boto("iam", endpoint)
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}
            tenant = _tenant(tags)
            if tenant is not None:
                found[tenant].roles.append(role["Arn"])
    secrets = boto("secretsmanager", endpoint)
    for page in secrets.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            tenant = _tenant({t["Key"]: t["Value"] for t in secret.get("Tags") or []})
            if tenant is not None:
                found[tenant].secrets.append(secret["ARN"])
    return dict(found)


def _tenant(tags: dict[str, str]) -> str | None:
    return tags.get(TAG_TENANT_ID) if tags.get(TAG_MANAGED_BY) == MANAGED_BY_VALUE else None


def assert_exactly_recorded(owned: Owned, tenant: dict[str, Any], *, tier: str = "premium") -> None:
    """One of each resource, and every owned resource is the one the registry recorded."""
    res = tenant["resources"]
    assert owned.user_pools == [res["user_pool_id"]], (owned, res)
    assert owned.identity_pools == [res["identity_pool_id"]], (owned, res)
    expected_roles = {res["authenticated_role_arn"]} | ({res["unauthenticated_role_arn"]} if tier == "premium" else set())
    assert sorted(owned.roles) == sorted(expected_roles), (owned, res)
    assert owned.app_clients == 1, owned
    if tier == "premium":
        assert owned.groups == 4 and owned.users == 1, owned
        assert len(owned.domains) == 1 and res["hosted_ui_domain"].startswith(owned.domains[0] + "."), (owned, res)
        # premium's confidential app client: exactly one secret, the one recorded.
        assert owned.secrets == [res["app_client_secret_arn"]], (owned, res)
    else:
        assert owned.secrets == [], owned
