"""aioboto3 gateways for cognito-idp, cognito-identity and IAM: the domain's cloud ports.

Every AWS call goes through ``aws_call`` so that failures come out as domain errors. Each method
takes the tenant's cell; today one set of clients serves the one configured cell, and a call for
any other Region is refused rather than sent to the wrong place.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name

from adapters.aws.clients import AwsClients
from adapters.aws.cognito_requests import app_client_request, mfa_request, resource_server_request, user_pool_request
from adapters.aws.errors import aws_call, translated
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound, ResourceNotOwned
from domain.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_TENANT_ID
from domain.ports import CloudResource, IamGateway, IdentityPoolGateway, SecretStore, SecretText, UserPoolGateway
from domain.tenant import Cell
from domain.tenant_settings import IdentityProviderSettings
from domain.tiers import Group, ResourceServer, TierTemplate

# Largest page the Cognito List* calls accept (ListUserPools, ListUserPoolClients,
# ListIdentityPools, ListIdentityProviders), Secrets Manager's ListSecrets 100, IAM's List* 1000.
_PAGE = 60
_SECRETS_PAGE = 100
_IAM_PAGE = 1000
_EPOCH = datetime.min.replace(tzinfo=UTC)


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _policy_json(document: dict[str, Any]) -> str:
    # IAM counts policy size without whitespace, but compact JSON keeps requests small anyway.
    return json.dumps(document, separators=(",", ":"))


async def _listed(client: Any, operation: str, key: str, page_size: int, **params: Any) -> AsyncIterator[dict[str, Any]]:
    """Every item of a paged list call, through botocore's paginator for it (NextToken or
    Marker/IsTruncated, whichever the operation uses; PageSize sets MaxResults or MaxItems). Each
    page is a call of its own, so the clients' event hooks (rate limiter, metrics, retries) see
    every page; failures come out as domain errors, as from ``aws_call``."""
    pages = client.get_paginator(xform_name(operation)).paginate(PaginationConfig={"PageSize": page_size}, **params)
    with translated(operation):
        async for page in pages:
            for item in page.get(key, []):
                yield item


def _prefer(candidates: list[tuple[CloudResource, Any]]) -> CloudResource | None:
    """Names are not unique in Cognito. When several resources share one, adopt one that carries
    the service's managed-by tag, the oldest first; the others are left for the orphan sweep."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: (c[0].tags.get(TAG_MANAGED_BY) != MANAGED_BY_VALUE, c[1]))
    return ranked[0][0]


def _stale_tag_keys(current: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """Keys to remove so that a resource carries exactly ``wanted``; AWS's own ``aws:`` tags stay."""
    return sorted(k for k in current if k not in wanted and not k.lower().startswith("aws:"))


def _managed(tags: dict[str, str] | None) -> bool:
    """Carries the service's ownership tag: the only resources the orphan sweep ever lists."""
    return (tags or {}).get(TAG_MANAGED_BY) == MANAGED_BY_VALUE


class _CellClients:
    def __init__(self, clients: AwsClients, *, page_size: int | None = None) -> None:
        """``page_size``: items per page of every list call (None: the largest each accepts)."""
        self._clients = clients
        self._page_size = page_size

    def _page(self, largest: int) -> int:
        return min(largest, self._page_size) if self._page_size else largest

    def _client(self, cell: Cell, service: str, *, retries: bool = True) -> Any:
        if cell.region != self._clients.region:
            raise CloudError(
                "CellNotServed",
                f"this service is configured for Region {self._clients.region}, not {cell.region}",
                retryable=False,
            )
        return self._clients.client(service, retries=retries)


class CognitoUserPoolGateway(_CellClients, UserPoolGateway):
    """cognito-idp (Amazon Cognito user pools)."""

    def _idp(self, cell: Cell, *, retries: bool = True) -> Any:
        return self._client(cell, "cognito-idp", retries=retries)

    def _resource(self, cell: Cell, pool: dict[str, Any], tags: dict[str, str] | None = None) -> CloudResource:
        arn = pool.get("Arn") or f"arn:{partition(cell.region)}:cognito-idp:{cell.region}:{cell.account_id}:userpool/{pool['Id']}"
        extra: dict[str, Any] = {"domain": pool.get("Domain") or None}
        if "SchemaAttributes" in pool:  # whether users can carry custom:tenant_id (pools made before it cannot)
            extra["tenant_id_attribute"] = any(a.get("Name") == "custom:tenant_id" for a in pool["SchemaAttributes"])
        if pool.get("DeletionProtection"):
            # Only when AWS reports it: teardown treats an unknown state as ACTIVE.
            extra["deletion_protection"] = pool["DeletionProtection"]
        return CloudResource(
            id=pool["Id"],
            name=pool["Name"],
            arn=arn,
            tags=dict(pool.get("UserPoolTags") or {}) if tags is None else dict(tags),
            extra=extra,
        )

    async def _describe(self, cell: Cell, pool_id: str) -> dict[str, Any] | None:
        try:
            response = await aws_call(self._idp(cell), "DescribeUserPool", UserPoolId=pool_id)
        except CloudNotFound:
            return None
        return response["UserPool"]

    async def find_user_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        if pool_id is not None:
            pool = await self._describe(cell, pool_id)
            return self._resource(cell, pool) if pool is not None else None
        matches: list[tuple[CloudResource, Any]] = []
        async for summary in _listed(self._idp(cell), "ListUserPools", "UserPools", self._page(_PAGE)):
            if summary.get("Name") != name:
                continue
            # ListUserPools carries no tags; DescribeUserPool does.
            pool = await self._describe(cell, summary["Id"])
            if pool is not None:
                matches.append((self._resource(cell, pool), pool.get("CreationDate") or _EPOCH))
        return _prefer(matches)

    async def create_user_pool(
        self,
        cell: Cell,
        *,
        name: str,
        template: TierTemplate,
        tags: dict[str, str],
        display_name: str | None = None,
        tenant_id: str | None = None,
    ) -> CloudResource:
        params = user_pool_request(
            name=name,
            template=template,
            tags=tags,
            display_name=display_name or name,
            tenant_id=tenant_id or tags.get(TAG_TENANT_ID, name),
        )
        response = await aws_call(self._idp(cell, retries=False), "CreateUserPool", **params)
        return self._resource(cell, response["UserPool"], tags)

    async def configure_mfa(
        self,
        cell: Cell,
        *,
        pool_id: str,
        template: TierTemplate,
        display_name: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        # Declarative, so running it again on an adopted pool is harmless.
        params = mfa_request(
            pool_id=pool_id, template=template, display_name=display_name or pool_id, tenant_id=tenant_id or pool_id
        )
        await aws_call(self._idp(cell), "SetUserPoolMfaConfig", **params)

    async def find_app_client(self, cell: Cell, *, pool_id: str, name: str) -> str | None:
        async for client in _listed(
            self._idp(cell), "ListUserPoolClients", "UserPoolClients", self._page(_PAGE), UserPoolId=pool_id
        ):
            if client.get("ClientName") == name:
                return str(client["ClientId"])
        return None

    async def create_app_client(
        self,
        cell: Cell,
        *,
        pool_id: str,
        name: str,
        template: TierTemplate,
        client: str | None = None,
        callback_urls: Sequence[str] | None = None,
        logout_urls: Sequence[str] | None = None,
        identity_providers: Sequence[str] | None = None,
    ) -> str:
        params = app_client_request(
            pool_id=pool_id,
            name=name,
            template=template,
            client=client,
            callback_urls=callback_urls,
            logout_urls=logout_urls,
            identity_providers=identity_providers,
        )
        response = await aws_call(self._idp(cell, retries=False), "CreateUserPoolClient", **params)
        return str(response["UserPoolClient"]["ClientId"])

    async def ensure_resource_server(self, cell: Cell, *, pool_id: str, server: ResourceServer) -> None:
        # Identifiers are unique per pool: look first, so a retry after a lost response adopts.
        try:
            await aws_call(self._idp(cell), "DescribeResourceServer", UserPoolId=pool_id, Identifier=server.identifier)
            return
        except CloudNotFound as exc:
            if exc.code != "ResourceNotFoundException" or "User pool" in exc.message:
                raise
        await aws_call(self._idp(cell), "CreateResourceServer", **resource_server_request(pool_id=pool_id, server=server))

    async def set_group_role(self, cell: Cell, *, pool_id: str, group: str, role_arn: str) -> None:
        await aws_call(self._idp(cell), "UpdateGroup", UserPoolId=pool_id, GroupName=group, RoleArn=role_arn)

    async def client_secret(self, cell: Cell, *, pool_id: str, client_id: str) -> SecretText:
        response = await aws_call(self._idp(cell), "DescribeUserPoolClient", UserPoolId=pool_id, ClientId=client_id)
        value = response["UserPoolClient"].get("ClientSecret")
        if not value:
            raise CloudError(
                "AppClientHasNoSecret",
                f"app client {client_id} of user pool {pool_id} was created without a secret, but the tier asks "
                "for one; a client's secret cannot be added later: delete the tenant and onboard it again",
                operation="DescribeUserPoolClient",
            )
        return SecretText(value)

    async def create_group(self, cell: Cell, *, pool_id: str, group: Group) -> None:
        params: dict[str, Any] = {"UserPoolId": pool_id, "GroupName": group.name}
        if group.description:
            params["Description"] = group.description
        if group.precedence is not None:
            params["Precedence"] = group.precedence
        await aws_call(self._idp(cell), "CreateGroup", **params)

    async def domain_owner(self, cell: Cell, *, domain: str) -> str | None:
        # An unknown domain is not an error: AWS answers with an empty DomainDescription.
        response = await aws_call(self._idp(cell), "DescribeUserPoolDomain", Domain=domain)
        return (response.get("DomainDescription") or {}).get("UserPoolId") or None

    async def create_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None:
        await aws_call(self._idp(cell, retries=False), "CreateUserPoolDomain", UserPoolId=pool_id, Domain=domain)

    async def delete_domain(self, cell: Cell, *, pool_id: str, domain: str) -> None:
        await aws_call(self._idp(cell), "DeleteUserPoolDomain", UserPoolId=pool_id, Domain=domain)

    async def user_exists(self, cell: Cell, *, pool_id: str, username: str) -> bool:
        try:
            await aws_call(self._idp(cell), "AdminGetUser", UserPoolId=pool_id, Username=username)
        except CloudNotFound as exc:
            if exc.code == "UserNotFoundException":
                return False
            raise  # the pool itself is gone
        return True

    async def create_user(
        self, cell: Cell, *, pool_id: str, username: str, email: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        await aws_call(
            self._idp(cell),
            "AdminCreateUser",
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                *({"Name": key, "Value": value} for key, value in (attributes or {}).items()),
            ],
            DesiredDeliveryMediums=["EMAIL"],
        )

    async def add_user_to_group(self, cell: Cell, *, pool_id: str, username: str, group: str) -> None:
        await aws_call(self._idp(cell), "AdminAddUserToGroup", UserPoolId=pool_id, Username=username, GroupName=group)

    async def set_deletion_protection(self, cell: Cell, *, pool_id: str, active: bool) -> None:
        wanted = "ACTIVE" if active else "INACTIVE"
        pool = await self._describe(cell, pool_id)
        if pool is None:
            raise CloudNotFound("ResourceNotFoundException", f"User pool {pool_id} does not exist.", operation="DescribeUserPool")
        if pool.get("DeletionProtection", "INACTIVE") == wanted:
            return
        # UpdateUserPool resets every setting it is not given to its default. That is harmless
        # only because this is called just before DeleteUserPool; should the delete then fail,
        # the settings that matter most are carried over: the ownership tags (adoption and the
        # orphan sweep trust them), admin-only sign-up, and the feature plan (billing).
        params: dict[str, Any] = {
            "UserPoolId": pool_id,
            "DeletionProtection": wanted,
            "AdminCreateUserConfig": {
                "AllowAdminCreateUserOnly": bool((pool.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly", True))
            },
        }
        if pool.get("UserPoolTags"):
            params["UserPoolTags"] = pool["UserPoolTags"]
        if pool.get("UserPoolTier"):
            params["UserPoolTier"] = pool["UserPoolTier"]
        await aws_call(self._idp(cell), "UpdateUserPool", **params)

    async def delete_user_pool(self, cell: Cell, *, pool_id: str) -> None:
        await aws_call(self._idp(cell), "DeleteUserPool", UserPoolId=pool_id)

    async def list_owned_user_pools(self, cell: Cell) -> list[CloudResource]:
        owned: list[CloudResource] = []
        async for summary in _listed(self._idp(cell), "ListUserPools", "UserPools", self._page(_PAGE)):
            # ListUserPools carries no tags; DescribeUserPool does. A pool deleted in between is skipped.
            pool = await self._describe(cell, summary["Id"])
            if pool is not None and _managed(pool.get("UserPoolTags")):
                owned.append(self._resource(cell, pool))
        return owned

    # -- the tenant's own identity providers and settings ------------------------------------

    async def describe_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> dict[str, Any] | None:
        try:
            response = await aws_call(self._idp(cell), "DescribeIdentityProvider", UserPoolId=pool_id, ProviderName=name)
        except CloudNotFound:
            return None
        provider = response["IdentityProvider"]
        details = {k: v for k, v in (provider.get("ProviderDetails") or {}).items() if k != "client_secret"}
        return {"type": provider.get("ProviderType"), "details": details, "attribute_mapping": provider.get("AttributeMapping") or {}}

    async def put_identity_provider(
        self,
        cell: Cell,
        *,
        pool_id: str,
        provider: IdentityProviderSettings,
        client_secret: SecretText | None,
        exists: bool,
    ) -> None:
        params: dict[str, Any] = {
            "UserPoolId": pool_id,
            "ProviderName": provider.name,
            "ProviderDetails": provider.provider_details(client_secret.reveal() if client_secret is not None else None),
        }
        if provider.attribute_mapping:
            params["AttributeMapping"] = dict(provider.attribute_mapping)
        if exists:
            await aws_call(self._idp(cell), "UpdateIdentityProvider", **params)
        else:
            # Not retried by botocore: a lost response is found again by the step's Describe.
            await aws_call(self._idp(cell, retries=False), "CreateIdentityProvider", ProviderType=provider.type, **params)

    async def delete_identity_provider(self, cell: Cell, *, pool_id: str, name: str) -> None:
        await aws_call(self._idp(cell), "DeleteIdentityProvider", UserPoolId=pool_id, ProviderName=name)

    async def list_identity_providers(self, cell: Cell, *, pool_id: str) -> list[str]:
        providers = _listed(self._idp(cell), "ListIdentityProviders", "Providers", self._page(_PAGE), UserPoolId=pool_id)
        return [p["ProviderName"] async for p in providers]

    async def update_app_client(
        self,
        cell: Cell,
        *,
        pool_id: str,
        client_id: str,
        name: str,
        template: TierTemplate,
        client: str | None = None,
        callback_urls: Sequence[str] | None = None,
        logout_urls: Sequence[str] | None = None,
        identity_providers: Sequence[str] | None = None,
    ) -> None:
        # UpdateUserPoolClient resets every setting it is not given to its default: send the
        # client's whole configuration, built as CreateUserPoolClient's was, not just the change.
        params = app_client_request(
            pool_id=pool_id,
            name=name,
            template=template,
            client=client,
            callback_urls=callback_urls,
            logout_urls=logout_urls,
            identity_providers=identity_providers,
        )
        client_api = self._idp(cell)
        accepted = client_api.meta.service_model.operation_model("UpdateUserPoolClient").input_shape.members
        update = {key: value for key, value in params.items() if key in accepted}
        await aws_call(self._idp(cell), "UpdateUserPoolClient", ClientId=client_id, **update)

    async def update_user_pool(
        self, cell: Cell, *, pool_id: str, template: TierTemplate, tags: dict[str, str], display_name: str, tenant_id: str
    ) -> None:
        # UpdateUserPool, too, resets what it is not given: the whole configuration goes again,
        # built as CreateUserPool's was (messages rendered with the new display name), with MFA
        # as the template has it (CreateUserPool starts OFF; SetUserPoolMfaConfig follows).
        params = user_pool_request(name=pool_id, template=template, tags=tags, display_name=display_name, tenant_id=tenant_id)
        client_api = self._idp(cell)
        accepted = client_api.meta.service_model.operation_model("UpdateUserPool").input_shape.members
        update = {key: value for key, value in params.items() if key in accepted}
        update["MfaConfiguration"] = template.mfa
        await aws_call(self._idp(cell), "UpdateUserPool", UserPoolId=pool_id, **update)
        await self.configure_mfa(cell, pool_id=pool_id, template=template, display_name=display_name, tenant_id=tenant_id)

    async def set_user_pool_tags(self, cell: Cell, *, pool_arn: str, tags: dict[str, str]) -> None:
        current = (await aws_call(self._idp(cell), "ListTagsForResource", ResourceArn=pool_arn)).get("Tags") or {}
        if tags:
            await aws_call(self._idp(cell), "TagResource", ResourceArn=pool_arn, Tags=dict(tags))
        stale = _stale_tag_keys(current, tags)
        if stale:
            await aws_call(self._idp(cell), "UntagResource", ResourceArn=pool_arn, TagKeys=stale)


class CognitoIdentityPoolGateway(_CellClients, IdentityPoolGateway):
    """cognito-identity (Amazon Cognito identity pools)."""

    def _identity(self, cell: Cell, *, retries: bool = True) -> Any:
        return self._client(cell, "cognito-identity", retries=retries)

    @staticmethod
    def _resource(cell: Cell, pool: dict[str, Any], tags: dict[str, str] | None = None) -> CloudResource:
        pool_id = pool["IdentityPoolId"]
        return CloudResource(
            id=pool_id,
            name=pool["IdentityPoolName"],
            arn=f"arn:{partition(cell.region)}:cognito-identity:{cell.region}:{cell.account_id}:identitypool/{pool_id}",
            tags=dict(pool.get("IdentityPoolTags") or {}) if tags is None else dict(tags),
        )

    async def _describe(self, cell: Cell, pool_id: str) -> dict[str, Any] | None:
        try:
            return await aws_call(self._identity(cell), "DescribeIdentityPool", IdentityPoolId=pool_id)
        except CloudNotFound:
            return None

    async def find_identity_pool(self, cell: Cell, *, pool_id: str | None, name: str) -> CloudResource | None:
        if pool_id is not None:
            pool = await self._describe(cell, pool_id)
            return self._resource(cell, pool) if pool is not None else None
        matches: list[tuple[CloudResource, Any]] = []
        async for summary in _listed(self._identity(cell), "ListIdentityPools", "IdentityPools", self._page(_PAGE)):
            if summary.get("IdentityPoolName") != name:
                continue
            pool = await self._describe(cell, summary["IdentityPoolId"])
            if pool is not None:
                matches.append((self._resource(cell, pool), len(matches)))
        return _prefer(matches)

    async def create_identity_pool(
        self,
        cell: Cell,
        *,
        name: str,
        provider_name: str,
        client_id: str,
        allow_unauthenticated: bool,
        tags: dict[str, str],
        client_ids: Sequence[str] = (),
        login_providers: Mapping[str, str] | None = None,
        server_side_token_check: bool = True,
    ) -> CloudResource:
        params: dict[str, Any] = {
            "IdentityPoolName": name,
            "AllowUnauthenticatedIdentities": allow_unauthenticated,
            "AllowClassicFlow": False,
            "CognitoIdentityProviders": [
                {"ProviderName": provider_name, "ClientId": cid, "ServerSideTokenCheck": server_side_token_check}
                for cid in (client_ids or [client_id])
            ],
            "IdentityPoolTags": dict(tags),
        }
        if login_providers:
            params["SupportedLoginProviders"] = dict(login_providers)
        response = await aws_call(self._identity(cell, retries=False), "CreateIdentityPool", **params)
        return self._resource(cell, response, tags)

    async def set_roles(
        self, cell: Cell, *, identity_pool_id: str, roles: dict[str, str], role_mappings: dict[str, Any] | None = None
    ) -> None:
        params: dict[str, Any] = {"IdentityPoolId": identity_pool_id, "Roles": dict(roles)}
        if role_mappings:
            params["RoleMappings"] = role_mappings
        await aws_call(self._identity(cell), "SetIdentityPoolRoles", **params)

    async def delete_identity_pool(self, cell: Cell, *, identity_pool_id: str) -> None:
        await aws_call(self._identity(cell), "DeleteIdentityPool", IdentityPoolId=identity_pool_id)

    async def list_owned_identity_pools(self, cell: Cell) -> list[CloudResource]:
        owned: list[CloudResource] = []
        async for summary in _listed(self._identity(cell), "ListIdentityPools", "IdentityPools", self._page(_PAGE)):
            pool = await self._describe(cell, summary["IdentityPoolId"])
            if pool is not None and _managed(pool.get("IdentityPoolTags")):
                owned.append(self._resource(cell, pool))
        return owned

    async def set_identity_pool_tags(self, cell: Cell, *, identity_pool_id: str, tags: dict[str, str]) -> None:
        pool = await self._describe(cell, identity_pool_id)
        if pool is None:
            raise CloudNotFound("ResourceNotFoundException", f"identity pool {identity_pool_id} not found", operation="DescribeIdentityPool")
        arn = self._resource(cell, pool).arn
        if tags:
            await aws_call(self._identity(cell), "TagResource", ResourceArn=arn, Tags=dict(tags))
        stale = _stale_tag_keys(pool.get("IdentityPoolTags") or {}, tags)
        if stale:
            await aws_call(self._identity(cell), "UntagResource", ResourceArn=arn, TagKeys=stale)


class IamRoleGateway(_CellClients, IamGateway):
    """IAM roles and their inline policies.

    IAM is eventually consistent: a role just created can be refused for a few seconds by calls
    that use it (SetIdentityPoolRoles, AssumeRoleWithWebIdentity). No sleeps here; callers retry
    the retryable errors with backoff.
    """

    def _iam(self, cell: Cell) -> Any:
        return self._client(cell, "iam")

    async def _tags(self, cell: Cell, name: str) -> dict[str, str]:
        listed = _listed(self._iam(cell), "ListRoleTags", "Tags", self._page(_IAM_PAGE), RoleName=name)
        return {tag["Key"]: tag["Value"] async for tag in listed}

    async def get_role(self, cell: Cell, *, name: str) -> CloudResource | None:
        try:
            role = (await aws_call(self._iam(cell), "GetRole", RoleName=name))["Role"]
            tags = await self._tags(cell, name)
        except CloudNotFound:
            return None
        return CloudResource(
            id=role["RoleName"],
            name=role["RoleName"],
            arn=role["Arn"],
            tags=tags,
            # botocore URL-decodes and parses IAM policy documents into dicts.
            extra={
                "trust_policy": role.get("AssumeRolePolicyDocument"),
                "permissions_boundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            },
        )

    async def create_role(
        self,
        cell: Cell,
        *,
        name: str,
        path: str,
        trust_policy: dict[str, Any],
        tags: dict[str, str],
        description: str,
        permissions_boundary: str | None = None,
    ) -> CloudResource:
        params: dict[str, Any] = {
            "RoleName": name,
            "Path": path,
            "AssumeRolePolicyDocument": _policy_json(trust_policy),
            "MaxSessionDuration": 3600,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }
        if description:
            params["Description"] = description
        if permissions_boundary:
            params["PermissionsBoundary"] = permissions_boundary
        role = (await aws_call(self._iam(cell), "CreateRole", **params))["Role"]
        return CloudResource(
            id=role["RoleName"],
            name=role["RoleName"],
            arn=role["Arn"],
            tags=dict(tags),
            extra={"trust_policy": trust_policy, "permissions_boundary": permissions_boundary},
        )

    async def update_trust_policy(self, cell: Cell, *, name: str, trust_policy: dict[str, Any]) -> None:
        await aws_call(self._iam(cell), "UpdateAssumeRolePolicy", RoleName=name, PolicyDocument=_policy_json(trust_policy))

    async def set_permissions_boundary(self, cell: Cell, *, name: str, boundary_arn: str) -> None:
        await aws_call(self._iam(cell), "PutRolePermissionsBoundary", RoleName=name, PermissionsBoundary=boundary_arn)

    async def put_role_policy(self, cell: Cell, *, role_name: str, policy_name: str, document: dict[str, Any]) -> None:
        await aws_call(
            self._iam(cell), "PutRolePolicy", RoleName=role_name, PolicyName=policy_name, PolicyDocument=_policy_json(document)
        )

    async def list_role_policies(self, cell: Cell, *, role_name: str) -> list[str]:
        listed = _listed(self._iam(cell), "ListRolePolicies", "PolicyNames", self._page(_IAM_PAGE), RoleName=role_name)
        return [str(policy_name) async for policy_name in listed]

    async def delete_role_policy(self, cell: Cell, *, role_name: str, policy_name: str) -> None:
        await aws_call(self._iam(cell), "DeleteRolePolicy", RoleName=role_name, PolicyName=policy_name)

    async def delete_role(self, cell: Cell, *, name: str) -> None:
        # Fails with DeleteConflict while inline policies remain: delete those first.
        await aws_call(self._iam(cell), "DeleteRole", RoleName=name)

    async def list_owned_roles(self, cell: Cell, *, path_prefix: str) -> list[CloudResource]:
        owned: list[CloudResource] = []
        async for role in _listed(self._iam(cell), "ListRoles", "Roles", self._page(_IAM_PAGE), PathPrefix=path_prefix):
            # ListRoles returns no tags; ListRoleTags does. A role deleted in between is skipped.
            try:
                tags = await self._tags(cell, role["RoleName"])
            except CloudNotFound:
                continue
            if _managed(tags):
                owned.append(
                    CloudResource(
                        id=role["RoleName"],
                        name=role["RoleName"],
                        arn=role["Arn"],
                        tags=tags,
                        extra={"path": role.get("Path")},
                    )
                )
        return owned

    async def set_role_tags(self, cell: Cell, *, name: str, tags: dict[str, str]) -> None:
        current = await self._tags(cell, name)
        if tags:
            await aws_call(self._iam(cell), "TagRole", RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        stale = _stale_tag_keys(current, tags)
        if stale:
            await aws_call(self._iam(cell), "UntagRole", RoleName=name, TagKeys=stale)


class SecretsManagerGateway(_CellClients, SecretStore):
    """AWS Secrets Manager: the app client secrets of tiers with confidential clients, and the
    client secrets of tenants' own identity providers.

    CreateSecret or PutSecretValue sends a value; ``read_secret`` (GetSecretValue) is the only
    read, and the domain calls it for identity-provider secrets only (deploy/iam-policy.json
    grants it on ``tenants/*/idp/*`` alone): an app client secret is never read back. A
    CloudResource names a secret by ARN and tags only. The request checker (param_check) knows
    SecretString is sensitive (botocore's model says so) and never prints it.
    """

    def _sm(self, cell: Cell) -> Any:
        return self._client(cell, "secretsmanager")

    @staticmethod
    def _resource(secret: dict[str, Any], tags: dict[str, str] | None = None) -> CloudResource:
        return CloudResource(
            id=secret["ARN"],
            name=secret["Name"],
            arn=secret["ARN"],
            tags={tag["Key"]: tag["Value"] for tag in secret.get("Tags") or []} if tags is None else dict(tags),
            extra={"deleted": secret.get("DeletedDate") is not None},
        )

    async def find_secret(self, cell: Cell, *, name: str) -> CloudResource | None:
        try:
            secret = await aws_call(self._sm(cell), "DescribeSecret", SecretId=name)
        except CloudNotFound:
            return None
        return self._resource(secret)

    async def put_client_secret(
        self, cell: Cell, *, name: str, secret_value: SecretText, tags: dict[str, str], description: str
    ) -> CloudResource:
        try:
            # Names are unique per account and Region, so a retry after a lost response cannot
            # create a second secret: it meets ResourceExistsException and adopts below.
            created = await aws_call(
                self._sm(cell),
                "CreateSecret",
                Name=name,
                Description=description,
                SecretString=secret_value.reveal(),
                Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
            )
        except CloudAlreadyExists:
            found = await self.find_secret(cell, name=name)
            if found is None:
                raise CloudError(
                    "SecretVanished", f"secret {name} was deleted while being adopted", retryable=True, operation="DescribeSecret"
                ) from None
            # Only the ownership tags decide: a template's own tags may have changed since.
            if any(found.tags.get(key) != tags.get(key) for key in (TAG_TENANT_ID, TAG_MANAGED_BY)):
                raise ResourceNotOwned(
                    f"a secret named {name!r} already exists and does not carry this tenant's ownership tags; "
                    "it was not created by this service for this tenant and will not be adopted"
                ) from None
            await aws_call(self._sm(cell), "PutSecretValue", SecretId=found.id, SecretString=secret_value.reveal())
            return found
        return self._resource(created, tags)

    async def delete_secret(self, cell: Cell, *, arn_or_name: str) -> None:
        # No recovery window: teardown must leave nothing of the tenant behind, and a secret
        # waiting out a 7-30 day window still holds its name (CreateSecret on it is refused).
        await aws_call(self._sm(cell), "DeleteSecret", SecretId=arn_or_name, ForceDeleteWithoutRecovery=True)

    async def list_owned_secrets(self, cell: Cell) -> list[CloudResource]:
        owned: list[CloudResource] = []
        # ListSecrets carries the tags; the filter only narrows the listing, _managed decides.
        filters = [{"Key": "tag-key", "Values": [TAG_MANAGED_BY]}]
        async for secret in _listed(self._sm(cell), "ListSecrets", "SecretList", self._page(_SECRETS_PAGE), Filters=filters):
            resource = self._resource(secret)
            if _managed(resource.tags):
                owned.append(resource)
        return owned

    async def list_secrets_with_prefix(self, cell: Cell, *, prefix: str) -> list[CloudResource]:
        # The name filter is a case-sensitive prefix match (AWS documents it, moto does the same);
        # the names are checked again here so that no looser server widens what a caller deletes.
        filters = [{"Key": "name", "Values": [prefix]}]
        return [
            self._resource(secret)
            async for secret in _listed(self._sm(cell), "ListSecrets", "SecretList", self._page(_SECRETS_PAGE), Filters=filters)
            if secret["Name"].startswith(prefix)
        ]

    async def read_secret(self, cell: Cell, *, arn_or_name: str) -> SecretText:
        response = await aws_call(self._sm(cell), "GetSecretValue", SecretId=arn_or_name)
        return SecretText(response.get("SecretString") or "")

    async def set_secret_tags(self, cell: Cell, *, arn_or_name: str, tags: dict[str, str]) -> None:
        found = await self.find_secret(cell, name=arn_or_name)
        if found is None:
            raise CloudNotFound("ResourceNotFoundException", f"secret {arn_or_name} not found", operation="DescribeSecret")
        if tags:
            await aws_call(self._sm(cell), "TagResource", SecretId=found.id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        stale = _stale_tag_keys(found.tags, tags)
        if stale:
            await aws_call(self._sm(cell), "UntagResource", SecretId=found.id, TagKeys=stale)
