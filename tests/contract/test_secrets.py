"""SecretStore's contract, held by FakeCloud and by SecretsManagerGateway on the emulator."""

from __future__ import annotations

import pytest

from domain.errors import CloudNotFound, ResourceNotOwned
from domain.naming import TAG_MANAGED_BY, ownership_tags
from domain.ports import CloudResource, SecretText
from tests.contract.conftest import Cloud
from tests.helpers import unique_id


async def _put(cloud: Cloud, name: str, value: str = "s3cr3t-value", *, tags: dict[str, str] | None = None) -> CloudResource:
    return await cloud.secrets.put_client_secret(
        cloud.cell,
        name=name,
        secret_value=SecretText(value),
        tags=ownership_tags("ct") if tags is None else tags,
        description="contract test secret",
    )


async def test_a_put_secret_is_found_by_name_and_by_arn(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    name = f"tenants/{tenant}/idp/Corp"
    created = await _put(cloud, name, tags=ownership_tags(tenant))

    assert created.name == name and created.id == created.arn and created.tags == ownership_tags(tenant)
    for key in (name, str(created.arn)):
        found = await cloud.secrets.find_secret(cloud.cell, name=key)
        assert found is not None
        assert (found.id, found.name, found.arn) == (created.arn, name, created.arn)
        assert found.tags == ownership_tags(tenant)
        assert found.extra["deleted"] is False


async def test_an_unknown_secret_is_none_and_cannot_be_read(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('nobody')}/idp/Corp"
    assert await cloud.secrets.find_secret(cloud.cell, name=name) is None
    with pytest.raises(CloudNotFound):
        await cloud.secrets.read_secret(cloud.cell, arn_or_name=name)


async def test_read_secret_returns_what_was_put(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/idp/Corp"
    created = await _put(cloud, name, "first-value")

    assert (await cloud.secrets.read_secret(cloud.cell, arn_or_name=name)).reveal() == "first-value"
    assert (await cloud.secrets.read_secret(cloud.cell, arn_or_name=str(created.arn))).reveal() == "first-value"


async def test_putting_a_secret_twice_keeps_one_secret_with_the_new_value(cloud: Cloud) -> None:
    prefix = f"tenants/{unique_id('ct')}/"
    first = await _put(cloud, f"{prefix}client", "first-value")

    second = await _put(cloud, f"{prefix}client", "second-value")

    assert second.arn == first.arn
    listed = await cloud.secrets.list_secrets_with_prefix(cloud.cell, prefix=prefix)
    assert [s.arn for s in listed] == [first.arn]
    assert (await cloud.secrets.read_secret(cloud.cell, arn_or_name=f"{prefix}client")).reveal() == "second-value"


async def test_putting_over_a_secret_someone_else_owns_is_refused(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/client"
    await _put(cloud, name, "theirs", tags={"team": "someone-else"})

    with pytest.raises(ResourceNotOwned):
        await _put(cloud, name, "ours")
    assert (await cloud.secrets.read_secret(cloud.cell, arn_or_name=name)).reveal() == "theirs"


async def test_a_deleted_secret_is_gone(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/client"
    created = await _put(cloud, name)

    await cloud.secrets.delete_secret(cloud.cell, arn_or_name=str(created.arn))

    assert await cloud.secrets.find_secret(cloud.cell, name=name) is None
    assert await cloud.secrets.list_secrets_with_prefix(cloud.cell, prefix=name) == []
    with pytest.raises(CloudNotFound):
        await cloud.secrets.read_secret(cloud.cell, arn_or_name=name)
    # The port allows both: CloudNotFound, or AWS simply succeeding for a secret already gone.
    try:
        await cloud.secrets.delete_secret(cloud.cell, arn_or_name=name)
    except CloudNotFound:
        pass


async def test_a_deleted_name_can_be_put_again_at_once(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/client"
    first = await _put(cloud, name, "first-value")
    await cloud.secrets.delete_secret(cloud.cell, arn_or_name=str(first.arn))

    again = await _put(cloud, name, "second-value")

    assert again.name == name
    assert (await cloud.secrets.read_secret(cloud.cell, arn_or_name=name)).reveal() == "second-value"


async def test_list_secrets_with_prefix_matches_the_start_of_whole_names_case_sensitively(cloud: Cloud) -> None:
    base = f"tenants/{unique_id('ct')}"
    for name in (f"{base}/idp/a", f"{base}/idp/ab", f"{base}/idpx", f"other/{base}/idp/a", f"{base.upper()}/idp/a"):
        await _put(cloud, name)

    listed = await cloud.secrets.list_secrets_with_prefix(cloud.cell, prefix=f"{base}/idp")

    assert sorted(s.name for s in listed) == sorted([f"{base}/idp/a", f"{base}/idp/ab", f"{base}/idpx"])
    assert all(s.tags == ownership_tags("ct") and s.id == s.arn for s in listed)
    assert sorted(s.name for s in await cloud.secrets.list_secrets_with_prefix(cloud.cell, prefix=f"{base}/idp/")) == [
        f"{base}/idp/a",
        f"{base}/idp/ab",
    ]


async def test_list_owned_secrets_has_the_tagged_secret_and_not_the_untagged(cloud: Cloud) -> None:
    base = f"tenants/{unique_id('ct')}"
    owned = await _put(cloud, f"{base}/owned")
    foreign = await _put(cloud, f"{base}/foreign", tags={"team": "someone-else"})

    listed = await cloud.secrets.list_owned_secrets(cloud.cell)

    by_arn = {s.arn: s for s in listed}
    assert owned.arn in by_arn and foreign.arn not in by_arn
    assert by_arn[owned.arn].name == owned.name and by_arn[owned.arn].tags == owned.tags
    assert all(TAG_MANAGED_BY in s.tags for s in listed)


async def test_set_secret_tags_makes_the_tags_exactly_those(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/client"
    created = await _put(cloud, name)
    wanted = {**created.tags, "cost-centre": "42"}

    await cloud.secrets.set_secret_tags(cloud.cell, arn_or_name=name, tags=wanted)
    found = await cloud.secrets.find_secret(cloud.cell, name=name)
    assert found is not None and found.tags == wanted

    await cloud.secrets.set_secret_tags(cloud.cell, arn_or_name=str(created.arn), tags={"cost-centre": "43"})
    found = await cloud.secrets.find_secret(cloud.cell, name=name)
    assert found is not None and found.tags == {"cost-centre": "43"}
    assert created.arn not in {s.arn for s in await cloud.secrets.list_owned_secrets(cloud.cell)}


async def test_set_secret_tags_of_a_secret_that_is_gone_is_not_found(cloud: Cloud) -> None:
    name = f"tenants/{unique_id('ct')}/client"
    created = await _put(cloud, name)
    await cloud.secrets.delete_secret(cloud.cell, arn_or_name=str(created.arn))

    with pytest.raises(CloudNotFound):
        await cloud.secrets.set_secret_tags(cloud.cell, arn_or_name=name, tags={"a": "b"})
