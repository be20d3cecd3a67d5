"""The tagged AWS resources a tenant owns, one entry per kind: how to list them by the ownership
tags, which names this deployment gives them, how to re-tag and how to delete one (with what AWS
needs gone first). Teardown, tag updates and the orphan sweep all go through this table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.errors import CloudNotFound
from domain.naming import ResourceNames
from domain.ports import CloudResource
from domain.provisioning.context import Gateways, ProvisioningSettings, missing_secret_store
from domain.tenant import Cell

USER_POOL, IDENTITY_POOL, IAM_ROLE, SECRET = "user_pool", "identity_pool", "iam_role", "secret"
ROLE_KINDS = {"auth": "authenticated", "unauth": "unauthenticated"}
Owned = Callable[[CloudResource | None], bool]


async def _gone_is_fine(call: Awaitable[None]) -> None:
    try:
        await call
    except CloudNotFound:
        pass


# -- user pools --------------------------------------------------------------------------------


async def _list_user_pools(gw: Gateways, cell: Cell, settings: ProvisioningSettings) -> list[CloudResource]:
    return await gw.user_pools.list_owned_user_pools(cell)


async def delete_user_pool(gw: Gateways, cell: Cell, pool: CloudResource) -> None:
    """DeleteUserPool fails while the pool has a domain or deletion protection: both go first,
    protection only at this point."""
    domain = pool.extra.get("domain")
    if domain:
        await _gone_is_fine(gw.user_pools.delete_domain(cell, pool_id=pool.id, domain=domain))
    if pool.extra.get("deletion_protection", "ACTIVE") != "INACTIVE":
        await gw.user_pools.set_deletion_protection(cell, pool_id=pool.id, active=False)
    await gw.user_pools.delete_user_pool(cell, pool_id=pool.id)


async def _tag_user_pool(gw: Gateways, cell: Cell, arn: str, tags: dict[str, str], owned: Owned) -> None:
    # By the ARN the tenant recorded: it is the tenant's own.
    await gw.user_pools.set_user_pool_tags(cell, pool_arn=arn, tags=tags)


# -- identity pools ----------------------------------------------------------------------------


async def _list_identity_pools(gw: Gateways, cell: Cell, settings: ProvisioningSettings) -> list[CloudResource]:
    return await gw.identity_pools.list_owned_identity_pools(cell)


async def delete_identity_pool(gw: Gateways, cell: Cell, pool: CloudResource) -> None:
    await gw.identity_pools.delete_identity_pool(cell, identity_pool_id=pool.id)


async def _tag_identity_pool(gw: Gateways, cell: Cell, pool_id: str, tags: dict[str, str], owned: Owned) -> None:
    await gw.identity_pools.set_identity_pool_tags(cell, identity_pool_id=pool_id, tags=tags)


# -- IAM roles ---------------------------------------------------------------------------------


async def _list_roles(gw: Gateways, cell: Cell, settings: ProvisioningSettings) -> list[CloudResource]:
    return await gw.iam.list_owned_roles(cell, path_prefix=settings.role_path)


async def delete_role(gw: Gateways, cell: Cell, role: CloudResource) -> None:
    # IAM refuses to delete a role that still has inline policies.
    for policy in await gw.iam.list_role_policies(cell, role_name=role.id):
        await _gone_is_fine(gw.iam.delete_role_policy(cell, role_name=role.id, policy_name=policy))
    await gw.iam.delete_role(cell, name=role.id)


async def _tag_role(gw: Gateways, cell: Cell, name: str, tags: dict[str, str], owned: Owned) -> None:
    # By name: a role created just before a crash was never recorded. Never one without our tags.
    if owned(await gw.iam.get_role(cell, name=name)):
        await gw.iam.set_role_tags(cell, name=name, tags=tags)


def _is_tenant_role(names: ResourceNames, resource: CloudResource) -> bool:
    # The authenticated/unauthenticated roles, or one of a tier's extra [roles].
    return resource.name.casefold() in {names.role(k).casefold() for k in ROLE_KINDS} or (
        names.extra_role_of(resource.name) is not None
    )


# -- Secrets Manager ---------------------------------------------------------------------------


async def _list_secrets(gw: Gateways, cell: Cell, settings: ProvisioningSettings) -> list[CloudResource]:
    return await gw.secrets.list_owned_secrets(cell) if gw.secrets is not None else []


async def delete_secret(gw: Gateways, cell: Cell, secret: CloudResource) -> None:
    if gw.secrets is None:
        raise missing_secret_store()
    await gw.secrets.delete_secret(cell, arn_or_name=secret.arn or secret.id)


async def _tag_secret(gw: Gateways, cell: Cell, arn_or_name: str, tags: dict[str, str], owned: Owned) -> None:
    if gw.secrets is None:
        raise missing_secret_store()
    found = await gw.secrets.find_secret(cell, name=arn_or_name)
    if found is not None and owned(found):
        await gw.secrets.set_secret_tags(cell, arn_or_name=found.id, tags=tags)


def _is_tenant_secret(names: ResourceNames, resource: CloudResource) -> bool:
    # The primary app client's secret, another client's, or a tenant identity provider's.
    return (
        resource.name == names.client_secret
        or names.client_of_secret(resource.name) is not None
        or names.provider_of_secret(resource.name) is not None
    )


@dataclass(frozen=True, slots=True)
class AwsKind:
    kind: str
    words: str  # "user pool", in messages
    list_owned: Callable[[Gateways, Cell, ProvisioningSettings], Awaitable[list[CloudResource]]]
    is_named: Callable[[ResourceNames, CloudResource], bool]
    delete: Callable[[Gateways, Cell, CloudResource], Awaitable[None]]
    # By the ARN, id or name a step recorded or gives it (tag updates).
    retag: Callable[[Gateways, Cell, str, dict[str, str], Owned], Awaitable[None]]


# In teardown order (AWS-FACTS.md "Ordering facts"): roles, identity pools, user pools; secrets
# depend on nothing.
AWS_KINDS: dict[str, AwsKind] = {
    IAM_ROLE: AwsKind(IAM_ROLE, "IAM role", _list_roles, _is_tenant_role, delete_role, _tag_role),
    IDENTITY_POOL: AwsKind(
        IDENTITY_POOL,
        "identity pool",
        _list_identity_pools,
        lambda names, r: r.name == names.identity_pool,
        delete_identity_pool,
        _tag_identity_pool,
    ),
    USER_POOL: AwsKind(
        USER_POOL,
        "user pool",
        _list_user_pools,
        lambda names, r: r.name == names.user_pool,
        delete_user_pool,
        _tag_user_pool,
    ),
    SECRET: AwsKind(SECRET, "secret", _list_secrets, _is_tenant_secret, delete_secret, _tag_secret),
}
