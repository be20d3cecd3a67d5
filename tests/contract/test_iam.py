"""IamGateway's contract, held by FakeCloud and by IamRoleGateway on the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound
from domain.naming import TAG_MANAGED_BY, ownership_tags
from domain.ports import CloudResource
from tests.contract.conftest import Cloud
from tests.helpers import unique_id

TRUST: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ],
}
POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}],
}


def _path() -> str:
    return f"/{unique_id('ct')}/"  # a path of its own, so list_owned_roles sees this test's roles only


async def _role(cloud: Cloud, *, path: str = "/", tags: dict[str, str] | None = None, name: str | None = None) -> CloudResource:
    tenant = unique_id("ct")
    return await cloud.iam.create_role(
        cloud.cell,
        name=name or f"{tenant}-auth",
        path=path,
        trust_policy=TRUST,
        tags=ownership_tags(tenant) if tags is None else tags,
        description="contract test role",
    )


async def test_a_created_role_is_found_by_name(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    created = await _role(cloud, name=f"{tenant}-auth", tags=ownership_tags(tenant))

    found = await cloud.iam.get_role(cloud.cell, name=f"{tenant}-auth")

    assert created.id == created.name == f"{tenant}-auth"
    assert created.arn == f"arn:aws:iam::{cloud.cell.account_id}:role/{tenant}-auth"
    assert found is not None
    assert (found.id, found.name, found.arn) == (created.id, created.name, created.arn)
    assert found.tags == ownership_tags(tenant)
    assert found.extra["permissions_boundary"] is None


async def test_an_unknown_role_is_none(cloud: Cloud) -> None:
    assert await cloud.iam.get_role(cloud.cell, name=unique_id("nobody")) is None


async def test_a_role_name_taken_is_already_exists_whatever_its_case(cloud: Cloud) -> None:
    role = await _role(cloud)

    with pytest.raises(CloudAlreadyExists):
        await _role(cloud, name=role.name)
    with pytest.raises(CloudAlreadyExists):
        await _role(cloud, name=role.name.upper())


async def test_role_policies_are_put_listed_and_deleted(cloud: Cloud) -> None:
    role = await _role(cloud)
    assert await cloud.iam.list_role_policies(cloud.cell, role_name=role.name) == []

    await cloud.iam.put_role_policy(cloud.cell, role_name=role.name, policy_name="b-data", document=POLICY)
    await cloud.iam.put_role_policy(cloud.cell, role_name=role.name, policy_name="a-data", document=POLICY)
    await cloud.iam.put_role_policy(cloud.cell, role_name=role.name, policy_name="a-data", document=POLICY)  # replaces
    assert sorted(await cloud.iam.list_role_policies(cloud.cell, role_name=role.name)) == ["a-data", "b-data"]

    await cloud.iam.delete_role_policy(cloud.cell, role_name=role.name, policy_name="a-data")
    assert await cloud.iam.list_role_policies(cloud.cell, role_name=role.name) == ["b-data"]
    with pytest.raises(CloudNotFound):
        await cloud.iam.delete_role_policy(cloud.cell, role_name=role.name, policy_name="a-data")


async def test_a_role_with_inline_policies_cannot_be_deleted(cloud: Cloud) -> None:
    role = await _role(cloud)
    await cloud.iam.put_role_policy(cloud.cell, role_name=role.name, policy_name="data", document=POLICY)

    with pytest.raises(CloudError) as refused:
        await cloud.iam.delete_role(cloud.cell, name=role.name)
    assert refused.value.code == "DeleteConflict"
    assert await cloud.iam.get_role(cloud.cell, name=role.name) is not None


async def test_a_deleted_role_is_gone_and_deleting_it_again_is_not_found(cloud: Cloud) -> None:
    role = await _role(cloud)

    await cloud.iam.delete_role(cloud.cell, name=role.name)

    assert await cloud.iam.get_role(cloud.cell, name=role.name) is None
    with pytest.raises(CloudNotFound):
        await cloud.iam.delete_role(cloud.cell, name=role.name)
    with pytest.raises(CloudNotFound):
        await cloud.iam.list_role_policies(cloud.cell, role_name=role.name)


async def test_list_owned_roles_has_the_tagged_roles_under_the_path_only(cloud: Cloud) -> None:
    path = _path()
    owned = await _role(cloud, path=path)
    foreign = await _role(cloud, path=path, tags={"team": "someone-else"})
    elsewhere = await _role(cloud, path=_path())

    listed = await cloud.iam.list_owned_roles(cloud.cell, path_prefix=path)

    assert [r.id for r in listed] == [owned.name]
    assert listed[0].name == owned.name and listed[0].arn == owned.arn
    assert listed[0].tags == owned.tags
    assert foreign.name not in {r.id for r in listed} and elsewhere.name not in {r.id for r in listed}
    assert all(TAG_MANAGED_BY in r.tags for r in listed)


async def test_set_role_tags_makes_the_tags_exactly_those(cloud: Cloud) -> None:
    path = _path()
    role = await _role(cloud, path=path)
    wanted = {**role.tags, "cost-centre": "42"}

    await cloud.iam.set_role_tags(cloud.cell, name=role.name, tags=wanted)
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.tags == wanted

    await cloud.iam.set_role_tags(cloud.cell, name=role.name, tags={"cost-centre": "43"})
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.tags == {"cost-centre": "43"}
    assert await cloud.iam.list_owned_roles(cloud.cell, path_prefix=path) == []


async def test_permissions_boundary_is_set_and_read_back(cloud: Cloud) -> None:
    boundary = f"arn:aws:iam::{cloud.cell.account_id}:policy/tenant-boundary"
    tenant = unique_id("ct")
    role = await cloud.iam.create_role(
        cloud.cell,
        name=f"{tenant}-auth",
        path="/",
        trust_policy=TRUST,
        tags=ownership_tags(tenant),
        description="contract",
        permissions_boundary=boundary,
    )
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.extra["permissions_boundary"] == boundary

    other = f"arn:aws:iam::{cloud.cell.account_id}:policy/other-boundary"
    await cloud.iam.set_permissions_boundary(cloud.cell, name=role.name, boundary_arn=other)
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.extra["permissions_boundary"] == other


async def test_the_trust_policy_is_read_back_and_replaced(cloud: Cloud) -> None:
    role = await _role(cloud)
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.extra["trust_policy"] == TRUST

    replaced = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Condition": {"StringEquals": {"aud": "x"}}}]}
    await cloud.iam.update_trust_policy(cloud.cell, name=role.name, trust_policy=replaced)
    found = await cloud.iam.get_role(cloud.cell, name=role.name)
    assert found is not None and found.extra["trust_policy"] == replaced


async def test_calls_on_a_role_that_is_gone_are_not_found(cloud: Cloud) -> None:
    name = unique_id("nobody")

    with pytest.raises(CloudNotFound):
        await cloud.iam.put_role_policy(cloud.cell, role_name=name, policy_name="data", document=POLICY)
    with pytest.raises(CloudNotFound):
        await cloud.iam.delete_role_policy(cloud.cell, role_name=name, policy_name="data")
    with pytest.raises(CloudNotFound):
        await cloud.iam.set_role_tags(cloud.cell, name=name, tags={"a": "b"})
    with pytest.raises(CloudNotFound):
        await cloud.iam.update_trust_policy(cloud.cell, name=name, trust_policy=TRUST)
