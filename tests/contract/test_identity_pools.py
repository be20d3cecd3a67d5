"""IdentityPoolGateway's contract, held by FakeCloud and by CognitoIdentityPoolGateway on the emulator."""

from __future__ import annotations

import pytest

from domain.errors import CloudError, CloudNotFound
from domain.naming import TAG_MANAGED_BY, ownership_tags
from domain.ports import CloudResource
from tests.contract.conftest import Cloud
from tests.helpers import unique_id

PROVIDER = "cognito-idp.us-east-1.amazonaws.com/us-east-1_Contract01"


async def _identity_pool(cloud: Cloud, *, tags: dict[str, str] | None = None, name: str | None = None) -> CloudResource:
    tenant = unique_id("ct")
    return await cloud.identity_pools.create_identity_pool(
        cloud.cell,
        name=name or f"ip-{tenant}",
        provider_name=PROVIDER,
        client_id="contractclient",
        allow_unauthenticated=False,
        tags=ownership_tags(tenant) if tags is None else tags,
    )


async def test_a_created_identity_pool_is_found_by_name_and_by_id(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    created = await _identity_pool(cloud, tags=ownership_tags(tenant), name=f"ip-{tenant}")

    by_id = await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=created.id, name="ignored")
    by_name = await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=None, name=f"ip-{tenant}")

    assert created.name == f"ip-{tenant}" and created.tags == ownership_tags(tenant)
    for found in (by_id, by_name):
        assert found is not None
        assert (found.id, found.name) == (created.id, created.name)
        assert found.tags == ownership_tags(tenant)


async def test_an_unknown_identity_pool_is_none_by_name_and_by_id(cloud: Cloud) -> None:
    unknown_id = "us-east-1:00000000-0000-0000-0000-00000000dead"
    assert await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=None, name=unique_id("nobody")) is None
    assert await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=unknown_id, name="x") is None


async def test_a_deleted_identity_pool_is_gone_and_deleting_it_again_is_not_found(cloud: Cloud) -> None:
    pool = await _identity_pool(cloud)

    await cloud.identity_pools.delete_identity_pool(cloud.cell, identity_pool_id=pool.id)

    assert await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=pool.id, name=pool.name) is None
    assert await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=None, name=pool.name) is None
    with pytest.raises(CloudNotFound):
        await cloud.identity_pools.delete_identity_pool(cloud.cell, identity_pool_id=pool.id)


async def test_list_owned_identity_pools_has_the_tagged_pool_and_not_the_untagged(cloud: Cloud) -> None:
    owned = await _identity_pool(cloud)
    foreign = await _identity_pool(cloud, tags={"team": "someone-else"})

    listed = await cloud.identity_pools.list_owned_identity_pools(cloud.cell)

    by_id = {p.id: p for p in listed}
    assert owned.id in by_id and foreign.id not in by_id
    assert by_id[owned.id].tags == owned.tags and by_id[owned.id].name == owned.name
    assert all(TAG_MANAGED_BY in p.tags for p in listed)


async def test_set_identity_pool_tags_makes_the_tags_exactly_those(cloud: Cloud) -> None:
    pool = await _identity_pool(cloud)
    wanted = {**pool.tags, "cost-centre": "42"}

    await cloud.identity_pools.set_identity_pool_tags(cloud.cell, identity_pool_id=pool.id, tags=wanted)
    found = await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.tags == wanted

    await cloud.identity_pools.set_identity_pool_tags(cloud.cell, identity_pool_id=pool.id, tags={"cost-centre": "43"})
    found = await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.tags == {"cost-centre": "43"}
    assert pool.id not in {p.id for p in await cloud.identity_pools.list_owned_identity_pools(cloud.cell)}


async def test_set_identity_pool_tags_of_a_pool_that_is_gone_is_not_found(cloud: Cloud) -> None:
    pool = await _identity_pool(cloud)
    await cloud.identity_pools.delete_identity_pool(cloud.cell, identity_pool_id=pool.id)

    with pytest.raises(CloudNotFound):
        await cloud.identity_pools.set_identity_pool_tags(cloud.cell, identity_pool_id=pool.id, tags={"a": "b"})


async def test_set_roles_of_a_pool_that_is_gone_is_not_found(cloud: Cloud) -> None:
    pool = await _identity_pool(cloud)
    await cloud.identity_pools.delete_identity_pool(cloud.cell, identity_pool_id=pool.id)
    role = f"arn:aws:iam::{cloud.cell.account_id}:role/tenants/ct-role"

    with pytest.raises(CloudNotFound):
        await cloud.identity_pools.set_roles(cloud.cell, identity_pool_id=pool.id, roles={"authenticated": role})


async def test_find_by_name_prefers_the_identity_pool_carrying_the_ownership_tag(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    name = f"ip-{tenant}"
    await _identity_pool(cloud, name=name, tags={"team": "someone-else"})
    ours = await _identity_pool(cloud, name=name, tags=ownership_tags(tenant))

    found = await cloud.identity_pools.find_identity_pool(cloud.cell, pool_id=None, name=name)

    assert found is not None and found.id == ours.id


async def test_set_roles_takes_role_arns(cloud: Cloud) -> None:
    pool = await _identity_pool(cloud)
    role = f"arn:aws:iam::{cloud.cell.account_id}:role/tenants/ct-role"

    await cloud.identity_pools.set_roles(cloud.cell, identity_pool_id=pool.id, roles={"authenticated": role})
    with pytest.raises(CloudError):
        await cloud.identity_pools.set_roles(
            cloud.cell, identity_pool_id=pool.id, roles={"authenticated": "arn:aws:s3:::not-a-role-at-all"}
        )
