"""EMULATOR EXTENSIONS for Cognito user pools (cognito-idp), on top of moto 5.2.5.

Probed against moto 5.2.5's server, which
- lacks TagResource / UntagResource / ListTagsForResource (HTTP 500 "not implemented");
- deletes a pool whose DeletionProtection is ACTIVE, and a pool that still has a domain
  (leaving the domain behind);
- accepts any prefix domain: one with a reserved word, one breaking the pattern, and one that
  another pool already holds (silently moving it to the new pool);
- keeps SetUserPoolMfaConfig's setting apart, so DescribeUserPool reports a stale MfaConfiguration;
- accepts an app client with a custom OAuth scope no resource server of the pool has;
- replaces an identity provider on a second CreateIdentityProvider of its name;
- compares usernames exactly even in a pool made with ``UsernameConfiguration.CaseSensitive``
  false, where AWS finds "Ann@example.com" as "ann@example.com" (``install()`` fixes moto's look-up);
- reports DeletionProtection only when the caller sent it, and its UpdateUserPool replaces
  the whole stored config, so UpdateUserPool without UserPoolTags drops the pool's tags;
- accepts any message template (verification, invitation, SMS): AWS holds them to the patterns
  and lengths of its API model (no control characters in emails, ``{####}`` in SMS, 140
  characters for subjects and SMS...), checked here with the service's own botocore-model
  checker (adapters/aws/param_check.py).

All state stays in moto's own objects: tags live where moto keeps CreateUserPool's
`UserPoolTags` (`pool.extended_config`), so DescribeUserPool and ListTagsForResource agree.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel
from moto.cognitoidp.models import (
    CognitoIdpBackend,
    CognitoIdpUserPool,
    cognitoidp_backends,
)

from ..param_check import AwsParamViolation, check_members
from .protocol import AwsError, AwsRequest, Hook, invalid_parameter, not_found

SERVICE = "AWSCognitoIdentityProviderService"

DELETION_PROTECTION_VALUES = ("ACTIVE", "INACTIVE")
# What AWS applies when CreateUserPool / UpdateUserPool leave DeletionProtection out.
DEFAULT_DELETION_PROTECTION = "INACTIVE"

PREFIX_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$")
RESERVED_DOMAIN_WORDS = ("aws", "amazon", "cognito")
USER_POOL_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):cognito-idp:(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12}):userpool/(?P<pool_id>[\w-]+)$"
)


def install() -> None:
    """Look users up as AWS does in a case-insensitive pool (idempotent): every Admin* call and
    sign-in goes through moto's ``CognitoIdpUserPool._get_user``."""
    original = CognitoIdpUserPool._get_user
    if getattr(original, "_case_aware", False):
        return

    @functools.wraps(original)
    def _get_user(self: CognitoIdpUserPool, username: str) -> Any:
        found = original(self, username)
        if found or (self.extended_config.get("UsernameConfiguration") or {}).get("CaseSensitive", True):
            return found
        wanted = username.lower()
        attributes = self.extended_config.get("UsernameAttributes") or []
        for user in self.users.values():
            values = [user.username, *(a.get("Value") for a in user.attributes if a.get("Name") in attributes)]
            if any(isinstance(v, str) and v.lower() == wanted for v in values):
                return user
        return None

    _get_user._case_aware = True  # type: ignore[attr-defined]
    CognitoIdpUserPool._get_user = _get_user  # type: ignore[method-assign]


def _backend(req: AwsRequest) -> CognitoIdpBackend:
    return cognitoidp_backends[req.account_id][req.region]


def _pool(req: AwsRequest, pool_id: str) -> CognitoIdpUserPool:
    pool = _backend(req).user_pools.get(pool_id)
    if pool is None:
        # Same wording as moto's own ResourceNotFoundError for a user pool.
        raise not_found(f"User pool {pool_id} does not exist.")
    return pool


def _check_deletion_protection(req: AwsRequest) -> None:
    value = req.param("DeletionProtection")
    if value is not None and value not in DELETION_PROTECTION_VALUES:
        raise invalid_parameter(
            f"1 validation error detected: Value '{value}' at 'deletionProtection' failed to "
            "satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE]"
        )


# --- message templates: the model's patterns and lengths, as AWS checks them -----------------

# The members of each call that carry message templates (and so a tenant's display name).
MESSAGE_MEMBERS = {
    "CreateUserPool": (
        "VerificationMessageTemplate", "EmailVerificationMessage", "EmailVerificationSubject",
        "SmsVerificationMessage", "SmsAuthenticationMessage", "AdminCreateUserConfig",
    ),
    "SetUserPoolMfaConfig": ("SmsMfaConfiguration", "EmailMfaConfiguration"),
}
MESSAGE_MEMBERS["UpdateUserPool"] = MESSAGE_MEMBERS["CreateUserPool"]


@functools.cache
def _operation_model(name: str) -> OperationModel:
    return botocore.session.get_session().get_service_model("cognito-idp").operation_model(name)


def _aws_path(path: str) -> str:
    """AWS names a member as the JSON path with each name's first letter lower-cased
    (``adminCreateUserConfig.inviteMessageTemplate.sMSMessage``)."""
    return ".".join(part[:1].lower() + part[1:] for part in path.split("."))


def _check_messages(req: AwsRequest, operation: str) -> None:
    try:
        check_members(_operation_model(operation), req.params, MESSAGE_MEMBERS[operation])
    except AwsParamViolation as violation:
        raise invalid_parameter(
            f"1 validation error detected: Value at '{_aws_path(violation.path)}' failed to satisfy "
            f"constraint: {violation.constraint}"
        ) from None


# --- CreateUserPool / UpdateUserPool: DeletionProtection always set, tags kept ---------------


def _before_create_user_pool(req: AwsRequest) -> None:
    _check_deletion_protection(req)
    _check_messages(req, "CreateUserPool")
    return None


def _after_create_user_pool(req: AwsRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Store and report the default protection, as AWS always returns the field."""
    described = body.get("UserPool", {})
    pool = _backend(req).user_pools.get(described.get("Id", ""))
    if pool is not None:
        pool.extended_config.setdefault("DeletionProtection", DEFAULT_DELETION_PROTECTION)
        described["DeletionProtection"] = pool.extended_config["DeletionProtection"]
    return body


def _before_update_user_pool(req: AwsRequest) -> None:
    _check_deletion_protection(req)
    _check_messages(req, "UpdateUserPool")
    pool = _backend(req).user_pools.get(req.param("UserPoolId", ""))
    if pool is not None and "UserPoolTags" not in req.params:
        # Tags are their own resource (TagResource...): an update that does not mention them
        # must not wipe them the way moto's config replacement does.
        req.scratch["tags"] = dict(pool.extended_config.get("UserPoolTags") or {})
    return None


def _after_update_user_pool(req: AwsRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Give omitted DeletionProtection its documented default and put untouched tags back.

    AWS documents that UpdateUserPool resets omitted settings to their defaults; moto
    already replaces the config, this only makes the reset explicit (INACTIVE, not absent).
    """
    pool = _backend(req).user_pools.get(req.param("UserPoolId", ""))
    if pool is not None:
        pool.extended_config.setdefault("DeletionProtection", DEFAULT_DELETION_PROTECTION)
        if "tags" in req.scratch:
            pool.extended_config["UserPoolTags"] = req.scratch["tags"]
    return body


# --- DeleteUserPool: refuse like AWS ----------------------------------------------------------


def _before_delete_user_pool(req: AwsRequest) -> None:
    pool = _backend(req).user_pools.get(req.param("UserPoolId", ""))
    if pool is None:
        return None  # moto answers ResourceNotFoundException itself
    if pool.extended_config.get("DeletionProtection") == "ACTIVE":
        raise invalid_parameter(
            "The user pool cannot be deleted because deletion protection is activated. "
            "Deletion protection must be inactivated first."
        )
    if pool.domain is not None:
        raise invalid_parameter(
            "User pool cannot be deleted. It has a domain configured that should be deleted first."
        )
    return None


# --- CreateUserPoolDomain: reserved, malformed and taken prefixes -----------------------------


def _before_create_user_pool_domain(req: AwsRequest) -> None:
    domain = str(req.param("Domain", ""))
    if not req.param("CustomDomainConfig"):  # a prefix domain, not the caller's own FQDN
        if not PREFIX_DOMAIN.match(domain):
            raise invalid_parameter(
                "The domain name contains an invalid character. Domain names can only contain "
                "lower-case letters, numbers, and hyphens. Please enter a different name that "
                f"follows this format: {PREFIX_DOMAIN.pattern}"
            )
        for word in RESERVED_DOMAIN_WORDS:
            if word in domain:
                raise invalid_parameter(f"Domain cannot contain reserved word: {word}")
    pool_id = str(req.param("UserPoolId", ""))
    _pool(req, pool_id)
    # Prefixes are unique per Region across all accounts, so look in every account's backend.
    for account_id in list(cognitoidp_backends.keys()):
        holder = cognitoidp_backends[account_id][req.region].user_pool_domains.get(domain)
        if holder is not None and holder.user_pool_id != pool_id:
            raise invalid_parameter("Domain already associated with another user pool.")
    return None


# --- SetUserPoolMfaConfig: DescribeUserPool reports the new MfaConfiguration -----------------


def _before_set_user_pool_mfa_config(req: AwsRequest) -> None:
    _check_messages(req, "SetUserPoolMfaConfig")
    return None


def _after_set_user_pool_mfa_config(req: AwsRequest, body: dict[str, Any]) -> dict[str, Any]:
    """moto keeps the MFA setting apart from the pool's config, so DescribeUserPool went on
    reporting the MfaConfiguration of CreateUserPool; AWS reports the current one."""
    pool = _backend(req).user_pools.get(req.param("UserPoolId", ""))
    if pool is not None and req.param("MfaConfiguration"):
        pool.extended_config["MfaConfiguration"] = req.param("MfaConfiguration")
    return body


# --- CreateUserPoolClient / UpdateUserPoolClient: custom scopes must exist --------------------

STANDARD_SCOPES = ("phone", "email", "openid", "profile", "aws.cognito.signin.user.admin")


def _before_user_pool_client(req: AwsRequest) -> None:
    """AWS refuses a client whose custom scope (``<resource server>/<scope>``) the pool does not
    have (ScopeDoesNotExistException); moto stores any scope."""
    scopes = req.param("AllowedOAuthScopes") or []
    pool = _backend(req).user_pools.get(req.param("UserPoolId", ""))
    if pool is None or not isinstance(scopes, list):
        return None
    known = {
        f"{identifier}/{scope.get('ScopeName')}"
        for identifier, server in pool.resource_servers.items()
        for scope in (server.scopes or [])
    }
    for scope in scopes:
        if scope not in STANDARD_SCOPES and scope not in known:
            raise AwsError("ScopeDoesNotExistException", f"Invalid scope requested: {scope}")
    return None


def _before_create_identity_provider(req: AwsRequest) -> None:
    # moto replaces a provider of the same name; AWS refuses the second one.
    name = str(req.param("ProviderName", ""))
    if name in _pool(req, str(req.param("UserPoolId", ""))).identity_providers:
        raise AwsError("DuplicateProviderException", f"A provider with the name {name} already exists in this user pool.")


# --- TagResource / UntagResource / ListTagsForResource (missing in moto) ----------------------


def _pool_by_arn(req: AwsRequest) -> CognitoIdpUserPool:
    arn = str(req.param("ResourceArn", ""))
    match = USER_POOL_ARN.match(arn)
    if match is None:
        raise invalid_parameter(f"Invalid ResourceArn: {arn}")
    if match["region"] != req.region or match["account"] != req.account_id:
        raise not_found(f"Resource {arn} does not exist.")
    pool = _backend(req).user_pools.get(match["pool_id"])
    if pool is None or pool.arn != arn:
        raise not_found(f"Resource {arn} does not exist.")
    return pool


def _tag_resource(req: AwsRequest) -> dict[str, Any]:
    pool = _pool_by_arn(req)
    tags = req.param("Tags") or {}
    if not isinstance(tags, dict):
        raise invalid_parameter("Tags must be a map of strings.")
    current = dict(pool.extended_config.get("UserPoolTags") or {})
    current.update({str(k): str(v) for k, v in tags.items()})
    pool.extended_config["UserPoolTags"] = current
    return {}


def _untag_resource(req: AwsRequest) -> dict[str, Any]:
    pool = _pool_by_arn(req)
    keys = req.param("TagKeys") or []
    if not isinstance(keys, list):
        raise invalid_parameter("TagKeys must be a list of strings.")
    current = dict(pool.extended_config.get("UserPoolTags") or {})
    for key in keys:
        current.pop(key, None)
    pool.extended_config["UserPoolTags"] = current
    return {}


def _list_tags_for_resource(req: AwsRequest) -> dict[str, Any]:
    pool = _pool_by_arn(req)
    return {"Tags": dict(pool.extended_config.get("UserPoolTags") or {})}


HOOKS: dict[str, Hook] = {
    f"{SERVICE}.CreateUserPool": Hook(_before_create_user_pool, _after_create_user_pool),
    f"{SERVICE}.UpdateUserPool": Hook(_before_update_user_pool, _after_update_user_pool),
    f"{SERVICE}.DeleteUserPool": Hook(before=_before_delete_user_pool),
    f"{SERVICE}.CreateUserPoolDomain": Hook(before=_before_create_user_pool_domain),
    f"{SERVICE}.SetUserPoolMfaConfig": Hook(_before_set_user_pool_mfa_config, _after_set_user_pool_mfa_config),
    f"{SERVICE}.CreateUserPoolClient": Hook(before=_before_user_pool_client),
    f"{SERVICE}.UpdateUserPoolClient": Hook(before=_before_user_pool_client),
    f"{SERVICE}.CreateIdentityProvider": Hook(before=_before_create_identity_provider),
    f"{SERVICE}.TagResource": Hook(before=_tag_resource),
    f"{SERVICE}.UntagResource": Hook(before=_untag_resource),
    f"{SERVICE}.ListTagsForResource": Hook(before=_list_tags_for_resource),
}
