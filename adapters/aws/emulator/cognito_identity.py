"""EMULATOR EXTENSIONS for Cognito identity pools (cognito-identity), on top of moto 5.2.5.

moto 5.2.5 lacks SetIdentityPoolRoles and GetIdentityPoolRoles, and TagResource, UntagResource and
ListTagsForResource (HTTP 500 "not implemented"), and ignores ListIdentityPools' MaxResults; the tags live on moto's pool (``tags``), where
CreateIdentityPool put them and DescribeIdentityPool reads them.
The roles are stored on moto's own identity pool object, so they share its life: DeleteIdentityPool
and a moto reset drop them with the pool, and no side table can drift out of step.
"""

from __future__ import annotations

import re
from typing import Any

from moto.cognitoidentity.models import CognitoIdentityPool, cognitoidentity_backends

from .protocol import AwsRequest, Hook, invalid_parameter, not_found

SERVICE = "AWSCognitoIdentityService"

ROLE_KINDS = ("authenticated", "unauthenticated")
MAPPING_TYPES = ("Token", "Rules")
AMBIGUOUS_RESOLUTIONS = ("AuthenticatedRole", "Deny")
MATCH_TYPES = ("Equals", "Contains", "StartsWith", "NotEqual")
# arn:<partition>:iam::<12-digit account>:role/<optional/path/>name
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\x21-\x7e]+/)*[\w+=,.@-]{1,64}$")

# Attribute names on moto's CognitoIdentityPool; prefixed so they cannot clash with moto's own.
_ROLES_ATTR = "_emulator_roles"
_ROLE_MAPPINGS_ATTR = "_emulator_role_mappings"


def _identity_pool(req: AwsRequest) -> CognitoIdentityPool:
    pool_id = str(req.param("IdentityPoolId", ""))
    pool = cognitoidentity_backends[req.account_id][req.region].identity_pools.get(pool_id)
    if pool is None:
        raise not_found(f"IdentityPool '{pool_id}' not found.")
    return pool


def _check_role_arn(arn: Any, where: str) -> None:
    if not isinstance(arn, str) or not IAM_ROLE_ARN.match(arn):
        raise invalid_parameter(f"{where}: '{arn}' is not a valid IAM role ARN.")


def _check_roles(roles: Any) -> dict[str, str]:
    if not isinstance(roles, dict):
        raise invalid_parameter("Roles must be a map.")
    for kind, arn in roles.items():
        if kind not in ROLE_KINDS:
            raise invalid_parameter(
                f"Invalid role type '{kind}': "
                "only 'authenticated' and 'unauthenticated' are supported."
            )
        _check_role_arn(arn, f"Roles.{kind}")
    return dict(roles)


def _check_role_mappings(mappings: Any) -> dict[str, Any]:
    """Enforce what the service model and AWS require of each provider's RoleMapping."""
    if not isinstance(mappings, dict):
        raise invalid_parameter("RoleMappings must be a map.")
    for provider, mapping in mappings.items():
        where = f"RoleMappings.{provider}"
        if not isinstance(mapping, dict) or mapping.get("Type") not in MAPPING_TYPES:
            raise invalid_parameter(f"{where}.Type must be one of: Token, Rules.")
        if mapping.get("AmbiguousRoleResolution") not in AMBIGUOUS_RESOLUTIONS:
            raise invalid_parameter(
                f"{where}.AmbiguousRoleResolution must be one of: AuthenticatedRole, Deny."
            )
        if mapping["Type"] == "Rules":
            rules = (mapping.get("RulesConfiguration") or {}).get("Rules")
            if not isinstance(rules, list) or not rules:
                raise invalid_parameter(
                    f"{where}.RulesConfiguration.Rules is required for Type Rules."
                )
            for index, rule in enumerate(rules):
                if not isinstance(rule, dict) or rule.get("MatchType") not in MATCH_TYPES:
                    raise invalid_parameter(
                        f"{where}.RulesConfiguration.Rules[{index}].MatchType must be one of: "
                        "Equals, Contains, StartsWith, NotEqual."
                    )
                _check_role_arn(rule.get("RoleARN"), f"{where}.RulesConfiguration.Rules[{index}]")
    return dict(mappings)


def _set_identity_pool_roles(req: AwsRequest) -> dict[str, Any]:
    """Replace the pool's roles and role mappings wholesale, as AWS does."""
    pool = _identity_pool(req)
    roles = _check_roles(req.param("Roles"))
    mappings = _check_role_mappings(req.param("RoleMappings") or {})
    setattr(pool, _ROLES_ATTR, roles)
    setattr(pool, _ROLE_MAPPINGS_ATTR, mappings)
    return {}


def _get_identity_pool_roles(req: AwsRequest) -> dict[str, Any]:
    pool = _identity_pool(req)
    body: dict[str, Any] = {
        "IdentityPoolId": pool.identity_pool_id,
        "Roles": dict(getattr(pool, _ROLES_ATTR, {})),
    }
    mappings = getattr(pool, _ROLE_MAPPINGS_ATTR, {})
    if mappings:
        body["RoleMappings"] = dict(mappings)
    return body


IDENTITY_POOL_ARN = re.compile(
    r"^arn:aws[a-z-]*:cognito-identity:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):identitypool/(?P<pool_id>[\w-]+:[0-9a-f-]+)$"
)


def _pool_by_arn(req: AwsRequest) -> CognitoIdentityPool:
    arn = str(req.param("ResourceArn", ""))
    match = IDENTITY_POOL_ARN.match(arn)
    if match is None:
        raise invalid_parameter(f"Invalid ResourceArn: {arn}")
    pools = cognitoidentity_backends[req.account_id][req.region].identity_pools
    pool = pools.get(match["pool_id"]) if match["region"] == req.region and match["account"] == req.account_id else None
    if pool is None:
        raise not_found(f"Resource {arn} does not exist.")
    return pool


def _tag_resource(req: AwsRequest) -> dict[str, Any]:
    pool = _pool_by_arn(req)
    tags = req.param("Tags") or {}
    if not isinstance(tags, dict):
        raise invalid_parameter("Tags must be a map of strings.")
    pool.tags = {**(pool.tags or {}), **{str(k): str(v) for k, v in tags.items()}}
    return {}


def _untag_resource(req: AwsRequest) -> dict[str, Any]:
    pool = _pool_by_arn(req)
    keys = req.param("TagKeys") or []
    if not isinstance(keys, list):
        raise invalid_parameter("TagKeys must be a list of strings.")
    pool.tags = {k: v for k, v in (pool.tags or {}).items() if k not in keys}
    return {}


def _list_tags_for_resource(req: AwsRequest) -> dict[str, Any]:
    return {"Tags": dict(_pool_by_arn(req).tags or {})}


def _list_identity_pools(req: AwsRequest) -> dict[str, Any]:
    """ListIdentityPools as AWS pages it: MaxResults (1-60, required) pools per page and a
    NextToken while more remain; moto 5.2.5 ignores MaxResults and returns every pool at once,
    which would hide a caller that reads only the first page."""
    max_results = req.param("MaxResults")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 60:
        raise invalid_parameter("MaxResults must be an integer from 1 to 60.")
    token = req.param("NextToken")
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.isdigit():
            raise invalid_parameter("Invalid NextToken.")
        start = int(token)
    pools = list(cognitoidentity_backends[req.account_id][req.region].identity_pools.values())
    page = pools[start : start + max_results]
    body: dict[str, Any] = {
        "IdentityPools": [{"IdentityPoolId": p.identity_pool_id, "IdentityPoolName": p.identity_pool_name} for p in page]
    }
    if start + max_results < len(pools):
        body["NextToken"] = str(start + max_results)
    return body


HOOKS: dict[str, Hook] = {
    f"{SERVICE}.ListIdentityPools": Hook(before=_list_identity_pools),
    f"{SERVICE}.SetIdentityPoolRoles": Hook(before=_set_identity_pool_roles),
    f"{SERVICE}.GetIdentityPoolRoles": Hook(before=_get_identity_pool_roles),
    f"{SERVICE}.TagResource": Hook(before=_tag_resource),
    f"{SERVICE}.UntagResource": Hook(before=_untag_resource),
    f"{SERVICE}.ListTagsForResource": Hook(before=_list_tags_for_resource),
}
