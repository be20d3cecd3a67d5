"""UserPoolGateway's contract, held by FakeCloud and by CognitoUserPoolGateway on the emulator."""

from __future__ import annotations

import pytest

from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound
from domain.naming import TAG_MANAGED_BY, ownership_tags
from domain.ports import CloudResource, SecretText
from domain.tenant_settings import IdentityProviderSettings
from domain.tiers import Group
from tests.contract.conftest import Cloud
from tests.helpers import unique_id
from tests.unit.fakes import shipped_tiers

BASIC = shipped_tiers()["basic"]  # no deletion protection, email usernames, a client without secret
PROTECTED = shipped_tiers()["standard"]  # deletion protection ACTIVE


async def _pool(cloud: Cloud, *, tags: dict[str, str] | None = None) -> CloudResource:
    tenant = unique_id("ct")
    return await cloud.user_pools.create_user_pool(
        cloud.cell, name=f"tp-{tenant}", template=BASIC, tags=ownership_tags(tenant) if tags is None else tags
    )


def _oidc(name: str, client_id: str, scopes: tuple[str, ...] = ("openid",)) -> IdentityProviderSettings:
    return IdentityProviderSettings(
        name=name,
        type="OIDC",
        client_id=client_id,
        scopes=scopes,
        issuer="https://login.example.com",
        attributes_request_method="GET",
        attribute_mapping={"email": "email"},
    )


async def test_a_created_pool_is_found_by_name_and_by_id(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    created = await cloud.user_pools.create_user_pool(
        cloud.cell, name=f"tp-{tenant}", template=BASIC, tags=ownership_tags(tenant)
    )

    by_id = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=created.id, name="ignored")
    by_name = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=None, name=f"tp-{tenant}")

    assert created.name == f"tp-{tenant}" and created.tags == ownership_tags(tenant)
    for found in (by_id, by_name):
        assert found is not None
        assert (found.id, found.name, found.arn) == (created.id, created.name, created.arn)
        assert found.tags == ownership_tags(tenant)
        assert found.extra["domain"] is None
        assert found.extra["deletion_protection"] == "INACTIVE"


async def test_an_unknown_pool_is_none_by_name_and_by_id(cloud: Cloud) -> None:
    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id=None, name=unique_id("nobody")) is None
    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id="us-east-1_Nope000000", name="x") is None


async def test_a_deleted_pool_is_gone_and_deleting_it_again_is_not_found(cloud: Cloud) -> None:
    pool = await _pool(cloud)

    await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)

    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name) is None
    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id=None, name=pool.name) is None
    with pytest.raises(CloudNotFound):
        await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)


async def test_deletion_protection_blocks_the_delete_until_it_is_turned_off(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    pool = await cloud.user_pools.create_user_pool(
        cloud.cell, name=f"tp-{tenant}", template=PROTECTED, tags=ownership_tags(tenant)
    )
    assert pool.extra["deletion_protection"] == "ACTIVE"

    with pytest.raises(CloudError) as refused:
        await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)
    assert not isinstance(refused.value, CloudNotFound)
    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name) is not None

    await cloud.user_pools.set_deletion_protection(cloud.cell, pool_id=pool.id, active=False)
    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.extra["deletion_protection"] == "INACTIVE"
    assert found.tags == ownership_tags(tenant)  # turning protection off keeps the ownership tags
    await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)
    assert await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name) is None


async def test_list_owned_user_pools_has_the_tagged_pool_with_its_tags_and_not_the_untagged(cloud: Cloud) -> None:
    owned = await _pool(cloud)
    foreign = await _pool(cloud, tags={"team": "someone-else"})

    listed = await cloud.user_pools.list_owned_user_pools(cloud.cell)

    by_id = {p.id: p for p in listed}
    assert owned.id in by_id and foreign.id not in by_id
    assert by_id[owned.id].tags == owned.tags and by_id[owned.id].name == owned.name
    assert by_id[owned.id].extra["domain"] is None
    assert all(TAG_MANAGED_BY in p.tags for p in listed)


async def test_set_user_pool_tags_makes_the_tags_exactly_those(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    wanted = {**pool.tags, "cost-centre": "42"}

    await cloud.user_pools.set_user_pool_tags(cloud.cell, pool_arn=str(pool.arn), tags=wanted)
    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.tags == wanted

    await cloud.user_pools.set_user_pool_tags(cloud.cell, pool_arn=str(pool.arn), tags={"cost-centre": "43"})
    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.tags == {"cost-centre": "43"}
    assert pool.id not in {p.id for p in await cloud.user_pools.list_owned_user_pools(cloud.cell)}


async def test_an_app_client_is_found_by_name(cloud: Cloud) -> None:
    pool = await _pool(cloud)

    assert await cloud.user_pools.find_app_client(cloud.cell, pool_id=pool.id, name="app") is None
    client_id = await cloud.user_pools.create_app_client(cloud.cell, pool_id=pool.id, name="app", template=BASIC)

    assert await cloud.user_pools.find_app_client(cloud.cell, pool_id=pool.id, name="app") == client_id
    assert await cloud.user_pools.find_app_client(cloud.cell, pool_id=pool.id, name="other") is None


async def test_client_secret_of_a_client_without_one_is_app_client_has_no_secret(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    client_id = await cloud.user_pools.create_app_client(cloud.cell, pool_id=pool.id, name="app", template=BASIC)

    with pytest.raises(CloudError) as error:
        await cloud.user_pools.client_secret(cloud.cell, pool_id=pool.id, client_id=client_id)
    assert error.value.code == "AppClientHasNoSecret"


async def test_creating_a_group_twice_is_already_exists(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    await cloud.user_pools.create_group(cloud.cell, pool_id=pool.id, group=Group(name="admins"))

    with pytest.raises(CloudAlreadyExists):
        await cloud.user_pools.create_group(cloud.cell, pool_id=pool.id, group=Group(name="admins"))


async def test_a_domain_has_its_pool_as_owner_until_it_is_deleted(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    domain = unique_id("ct")

    assert await cloud.user_pools.domain_owner(cloud.cell, domain=domain) is None
    await cloud.user_pools.create_domain(cloud.cell, pool_id=pool.id, domain=domain)
    assert await cloud.user_pools.domain_owner(cloud.cell, domain=domain) == pool.id
    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.extra["domain"] == domain

    await cloud.user_pools.delete_domain(cloud.cell, pool_id=pool.id, domain=domain)
    assert await cloud.user_pools.domain_owner(cloud.cell, domain=domain) is None
    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.extra["domain"] is None


async def test_a_pool_with_a_domain_cannot_be_deleted(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    domain = unique_id("ct")
    await cloud.user_pools.create_domain(cloud.cell, pool_id=pool.id, domain=domain)

    with pytest.raises(CloudError) as refused:
        await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)
    assert not isinstance(refused.value, CloudNotFound)
    assert await cloud.user_pools.domain_owner(cloud.cell, domain=domain) == pool.id


async def test_user_exists_after_create_user_and_a_second_create_is_already_exists(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    email = f"{unique_id('admin')}@example.com"

    assert await cloud.user_pools.user_exists(cloud.cell, pool_id=pool.id, username=email) is False
    await cloud.user_pools.create_user(cloud.cell, pool_id=pool.id, username=email, email=email)
    assert await cloud.user_pools.user_exists(cloud.cell, pool_id=pool.id, username=email) is True

    with pytest.raises(CloudAlreadyExists):
        await cloud.user_pools.create_user(cloud.cell, pool_id=pool.id, username=email, email=email)


async def test_user_exists_in_a_pool_that_is_gone_is_not_found(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.user_exists(cloud.cell, pool_id=pool.id, username="a@example.com")


async def test_identity_providers_are_put_described_listed_and_deleted(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    secret = None  # OIDC here needs no secret in the contract; the details are what comes back
    assert await cloud.user_pools.list_identity_providers(cloud.cell, pool_id=pool.id) == []
    assert await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Corp") is None

    await cloud.user_pools.put_identity_provider(
        cloud.cell, pool_id=pool.id, provider=_oidc("Corp", "first"), client_secret=secret, exists=False
    )
    described = await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Corp")
    assert described is not None
    assert described["type"] == "OIDC"
    assert described["details"]["client_id"] == "first"
    assert described["details"]["authorize_scopes"] == "openid"
    assert described["attribute_mapping"]["email"] == "email"
    assert await cloud.user_pools.list_identity_providers(cloud.cell, pool_id=pool.id) == ["Corp"]

    await cloud.user_pools.put_identity_provider(
        cloud.cell, pool_id=pool.id, provider=_oidc("Corp", "second", ("openid", "email")), client_secret=secret, exists=True
    )
    described = await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Corp")
    assert described is not None
    assert described["details"]["client_id"] == "second"
    assert described["details"]["authorize_scopes"] == "openid email"

    await cloud.user_pools.delete_identity_provider(cloud.cell, pool_id=pool.id, name="Corp")
    assert await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Corp") is None
    assert await cloud.user_pools.list_identity_providers(cloud.cell, pool_id=pool.id) == []
    with pytest.raises(CloudNotFound):
        await cloud.user_pools.delete_identity_provider(cloud.cell, pool_id=pool.id, name="Corp")


async def test_find_by_name_prefers_the_pool_carrying_the_ownership_tag(cloud: Cloud) -> None:
    # Names are not unique in Cognito: a look-up by name adopts the service's own pool.
    tenant = unique_id("ct")
    name = f"tp-{tenant}"
    await cloud.user_pools.create_user_pool(cloud.cell, name=name, template=BASIC, tags={"team": "someone-else"})
    ours = await cloud.user_pools.create_user_pool(cloud.cell, name=name, template=BASIC, tags=ownership_tags(tenant))

    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=None, name=name)

    assert found is not None and found.id == ours.id


async def test_usernames_are_case_insensitive_in_a_pool_made_so(cloud: Cloud) -> None:
    pool = await _pool(cloud)  # basic: case_sensitive_usernames = false
    email = f"{unique_id('admin')}@example.com"
    await cloud.user_pools.create_user(cloud.cell, pool_id=pool.id, username=email, email=email)

    assert await cloud.user_pools.user_exists(cloud.cell, pool_id=pool.id, username=email.upper()) is True
    with pytest.raises(CloudAlreadyExists):
        await cloud.user_pools.create_user(cloud.cell, pool_id=pool.id, username=email.upper(), email=email)


async def test_adding_to_a_group_needs_the_user_and_the_group(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    email = f"{unique_id('admin')}@example.com"
    await cloud.user_pools.create_group(cloud.cell, pool_id=pool.id, group=Group(name="admins"))

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.add_user_to_group(cloud.cell, pool_id=pool.id, username=email, group="admins")
    await cloud.user_pools.create_user(cloud.cell, pool_id=pool.id, username=email, email=email)
    with pytest.raises(CloudNotFound):
        await cloud.user_pools.add_user_to_group(cloud.cell, pool_id=pool.id, username=email, group="nobody")
    await cloud.user_pools.add_user_to_group(cloud.cell, pool_id=pool.id, username=email, group="admins")


async def test_set_group_role_of_an_unknown_group_is_not_found(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    role = f"arn:aws:iam::{cloud.cell.account_id}:role/ct-role"

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.set_group_role(cloud.cell, pool_id=pool.id, group="nobody", role_arn=role)
    await cloud.user_pools.create_group(cloud.cell, pool_id=pool.id, group=Group(name="admins"))
    await cloud.user_pools.set_group_role(cloud.cell, pool_id=pool.id, group="admins", role_arn=role)


async def test_a_domain_held_by_another_pool_is_refused(cloud: Cloud) -> None:
    first = await _pool(cloud)
    second = await _pool(cloud)
    domain = unique_id("ct")
    await cloud.user_pools.create_domain(cloud.cell, pool_id=first.id, domain=domain)

    with pytest.raises(CloudError):
        await cloud.user_pools.create_domain(cloud.cell, pool_id=second.id, domain=domain)
    assert await cloud.user_pools.domain_owner(cloud.cell, domain=domain) == first.id


async def test_a_confidential_client_has_a_secret(cloud: Cloud) -> None:
    premium = shipped_tiers()["premium"]
    tenant = unique_id("ct")
    pool = await cloud.user_pools.create_user_pool(cloud.cell, name=f"tp-{tenant}", template=premium, tags=ownership_tags(tenant))
    for server in premium.resource_servers:
        await cloud.user_pools.ensure_resource_server(cloud.cell, pool_id=pool.id, server=server)
    client_id = await cloud.user_pools.create_app_client(cloud.cell, pool_id=pool.id, name="app", template=premium)

    secret = await cloud.user_pools.client_secret(cloud.cell, pool_id=pool.id, client_id=client_id)

    assert len(secret.reveal()) >= 30 and secret.reveal() not in repr(secret)


async def test_ensure_resource_server_twice_is_harmless(cloud: Cloud) -> None:
    premium = shipped_tiers()["premium"]
    pool = await _pool(cloud)
    for _ in range(2):
        for server in premium.resource_servers:
            await cloud.user_pools.ensure_resource_server(cloud.cell, pool_id=pool.id, server=server)


async def test_update_user_pool_sets_the_tags_it_is_given(cloud: Cloud) -> None:
    tenant = unique_id("ct")
    pool = await _pool(cloud, tags=ownership_tags(tenant))
    wanted = {**ownership_tags(tenant), "cost-centre": "42"}

    await cloud.user_pools.update_user_pool(
        cloud.cell, pool_id=pool.id, template=BASIC, tags=wanted, display_name="Acme", tenant_id=tenant
    )

    found = await cloud.user_pools.find_user_pool(cloud.cell, pool_id=pool.id, name=pool.name)
    assert found is not None and found.tags == wanted


async def test_update_app_client_of_an_unknown_client_is_not_found(cloud: Cloud) -> None:
    pool = await _pool(cloud)

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.update_app_client(
            cloud.cell, pool_id=pool.id, client_id="nosuchclient0000000000000", name="app", template=BASIC
        )


async def test_set_user_pool_tags_of_a_pool_that_is_gone_is_not_found(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.set_user_pool_tags(cloud.cell, pool_arn=str(pool.arn), tags={"a": "b"})


async def test_identity_provider_details_never_carry_the_client_secret(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    google = IdentityProviderSettings(name="Google", type="Google", client_id="g-client", scopes=("openid", "email"))

    await cloud.user_pools.put_identity_provider(
        cloud.cell, pool_id=pool.id, provider=google, client_secret=SecretText("g-secret-value"), exists=False
    )

    described = await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Google")
    assert described is not None and described["type"] == "Google"
    assert described["details"]["client_id"] == "g-client"
    assert "client_secret" not in described["details"]
    assert "g-secret-value" not in repr(described)


async def test_putting_an_identity_provider_with_the_wrong_exists_is_refused(cloud: Cloud) -> None:
    pool = await _pool(cloud)

    with pytest.raises(CloudNotFound):
        await cloud.user_pools.put_identity_provider(
            cloud.cell, pool_id=pool.id, provider=_oidc("Corp", "c"), client_secret=None, exists=True
        )
    await cloud.user_pools.put_identity_provider(
        cloud.cell, pool_id=pool.id, provider=_oidc("Corp", "c"), client_secret=None, exists=False
    )
    with pytest.raises(CloudError) as duplicate:
        await cloud.user_pools.put_identity_provider(
            cloud.cell, pool_id=pool.id, provider=_oidc("Corp", "c"), client_secret=None, exists=False
        )
    assert duplicate.value.code == "DuplicateProviderException"


async def test_reads_of_a_pool_that_is_gone(cloud: Cloud) -> None:
    pool = await _pool(cloud)
    await cloud.user_pools.delete_user_pool(cloud.cell, pool_id=pool.id)

    assert await cloud.user_pools.describe_identity_provider(cloud.cell, pool_id=pool.id, name="Corp") is None
    with pytest.raises(CloudNotFound):
        await cloud.user_pools.list_identity_providers(cloud.cell, pool_id=pool.id)
    with pytest.raises(CloudNotFound):
        await cloud.user_pools.find_app_client(cloud.cell, pool_id=pool.id, name="app")
