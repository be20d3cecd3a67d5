"""Confidential app clients: the client secret is kept in Secrets Manager, the tenant records its ARN.

Against the in-memory cloud: exactly one secret per premium tenant, tagged and named as the
service names it, adopted (never duplicated) after a lost response, refused when someone else's,
deleted on teardown, and never in the tenant's recorded outputs.
"""

from __future__ import annotations

import json

import botocore.session
import pytest

from adapters.aws.param_check import AwsParamViolation, check_params
from domain.errors import CloudError
from domain.naming import ResourceNames, is_valid_secret_name, ownership_tags
from domain.ports import SecretText
from domain.provisioning import Gateways, ProvisioningSettings, ProvisionTenant, provisioning_steps
from domain.tenant import Tenant, TenantStatus
from tests.unit.fakes import World

S = TenantStatus
NAMES = ResourceNames("tenants", "acme")


def stored(world: World, tenant_id: str = "acme") -> Tenant:
    tenant = world.registry.tenant(tenant_id)
    assert tenant is not None
    return tenant


def client_secret_of(world: World, tenant: Tenant) -> str:
    pool = world.cloud.user_pools[tenant.outputs["user_pool_id"]]
    value = pool.clients[tenant.outputs["app_client_id"]]["secret"]
    assert isinstance(value, str) and value
    return value


def assert_secret_nowhere_in(tenant: Tenant, secret: str) -> None:
    """Neither in the outputs the registry keeps nor in anything else the tenant carries."""
    assert secret not in json.dumps(tenant.outputs)
    assert secret not in repr(tenant)
    assert secret not in json.dumps(tenant.public_resources())


async def test_premium_provisioning_keeps_exactly_one_tagged_secret_and_records_its_arn() -> None:
    world = World()
    tenant = await world.active_tenant("acme", "premium")

    [secret] = world.cloud.secrets.values()
    assert secret.name == "tenants/acme/app-client/secret" == NAMES.client_secret
    assert secret.tags == ownership_tags("acme")
    assert secret.value == client_secret_of(world, tenant)
    assert tenant.outputs["app_client_secret_arn"] == secret.arn
    assert tenant.public_resources()["app_client_secret_arn"] == secret.arn
    assert "client_secret" in tenant.completed_steps
    assert_secret_nowhere_in(tenant, secret.value)
    # The value crossed the port wrapped, so a log line or a traceback that shows it shows nothing.
    [call] = world.cloud.calls_to("put_client_secret")
    assert isinstance(call.kwargs["secret_value"], SecretText)
    assert secret.value not in repr(call.kwargs) and secret.value not in str(call.kwargs["secret_value"])


@pytest.mark.parametrize("tier", ["basic", "standard"])
async def test_tiers_with_public_clients_store_no_secret(tier: str) -> None:
    world = World()
    tenant = await world.active_tenant("acme", tier)

    assert world.cloud.secrets == {}
    assert "client_secret" not in {s.name for s in provisioning_steps(world.tiers[tier], with_admin=True)}
    assert tenant.public_resources()["app_client_secret_arn"] is None
    assert world.cloud.count("client_secret") == 0


async def test_teardown_deletes_the_secret() -> None:
    world = World()
    await world.active_tenant("acme", "premium")

    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED

    assert world.cloud.secrets == {}
    assert world.cloud.is_empty()
    tenant = stored(world)
    assert "app_client_secret_arn" not in tenant.outputs
    assert tenant.public_resources()["app_client_secret_arn"] is None


async def test_a_lost_create_response_adopts_the_secret_instead_of_making_another() -> None:
    world = World(settings=ProvisioningSettings(step_attempts=3, step_backoff_s=0.0))
    world.cloud.lose_response("put_client_secret")  # the secret is created, the answer is lost
    await world.onboard_spec("acme", "premium")

    assert await world.provision("acme") is S.ACTIVE

    [secret] = world.cloud.secrets.values()
    tenant = stored(world)
    assert tenant.outputs["app_client_secret_arn"] == secret.arn
    # The second attempt adopted the secret and wrote the same value again.
    assert secret.versions == [client_secret_of(world, tenant)] * 2
    assert_secret_nowhere_in(tenant, secret.value)


async def test_a_secret_created_by_a_failed_run_is_adopted_by_the_retry() -> None:
    world = World()  # one attempt per step: the lost response fails the run
    world.cloud.lose_response("put_client_secret")
    await world.onboard_spec("acme", "premium")
    assert await world.provision("acme") is S.FAILED
    failed = stored(world)
    assert failed.last_error is not None and failed.last_error.step == "client_secret"
    assert "app_client_secret_arn" not in failed.outputs

    await world.retry("acme")
    assert await world.provision("acme") is S.ACTIVE

    [secret] = world.cloud.secrets.values()
    assert stored(world).outputs["app_client_secret_arn"] == secret.arn


async def test_someone_elses_secret_under_the_name_is_neither_adopted_nor_overwritten() -> None:
    world = World()
    foreign = world.cloud.seed_secret(NAMES.client_secret, "not-yours", tags={"team": "payments"})
    await world.onboard_spec("acme", "premium")

    assert await world.provision("acme") is S.FAILED

    tenant = stored(world)
    assert tenant.last_error is not None
    assert (tenant.last_error.code, tenant.last_error.step) == ("ResourceNotOwned", "client_secret")
    assert foreign.versions == ["not-yours"]
    assert list(world.cloud.secrets.values()) == [foreign]
    # Teardown leaves it alone too.
    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED
    assert list(world.cloud.secrets.values()) == [foreign]


async def test_teardown_finds_a_secret_that_was_never_recorded() -> None:
    # As after a kill between CreateSecret and the registry write.
    world = World()
    await world.active_tenant("acme", "premium")
    tenant = stored(world)
    tenant.outputs.pop("app_client_secret_arn")
    world.registry.put(tenant)

    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED

    assert world.cloud.secrets == {}
    assert world.cloud.count("delete_secret") == 1


async def test_a_secret_already_gone_counts_as_deleted() -> None:
    world = World()
    await world.active_tenant("acme", "premium")
    world.cloud.secrets.clear()  # deleted by hand

    await world.delete("acme")
    assert await world.deprovision("acme") is S.DELETED
    assert world.cloud.is_empty()


async def test_a_deployment_without_a_secret_store_fails_the_step_clearly() -> None:
    world = World()
    gateways = Gateways(user_pools=world.cloud, identity_pools=world.cloud, iam=world.cloud)
    provision = ProvisionTenant(world.registry, gateways, world.tiers, world.clock, world.settings, world.observer)
    await world.onboard_spec("acme", "premium")

    assert await provision("acme") is S.FAILED

    error = stored(world).last_error
    assert error is not None and (error.code, error.step) == ("secret_store_missing", "client_secret")
    assert "Secrets Manager" in error.message
    assert world.cloud.count("client_secret") == 0  # the secret was never even read


async def test_an_app_client_without_a_secret_is_reported() -> None:
    world = World()
    await world.onboard_spec("acme", "premium")
    real_create = world.cloud.create_app_client

    async def public_client(cell, *, pool_id, name, template, **rest):  # type: ignore[no-untyped-def]
        public = template.model_copy(update={"app_client": template.app_client.model_copy(update={"generate_secret": False})})
        return await real_create(cell, pool_id=pool_id, name=name, template=public, **rest)

    world.cloud.create_app_client = public_client  # type: ignore[method-assign]
    assert await world.provision("acme") is S.FAILED
    error = stored(world).last_error
    assert error is not None and (error.code, error.step) == ("AppClientHasNoSecret", "client_secret")
    assert world.cloud.secrets == {}


def test_secret_text_never_shows_its_value() -> None:
    secret = SecretText("s3cr3t-value")
    assert "s3cr3t-value" not in repr(secret) and "s3cr3t-value" not in str(secret) and "s3cr3t-value" not in f"{secret}"
    assert "s3cr3t-value" not in str(CloudError("X", f"failed with {secret}"))
    assert secret.reveal() == "s3cr3t-value"
    with pytest.raises(TypeError):
        json.dumps({"secret": secret})


@pytest.mark.parametrize(
    ("prefix", "tenant_id"), [("tenants", "acme"), ("p" * 16, "a" + "b" * 38 + "c"), ("ab", "a-1")]
)
def test_secret_names_follow_secrets_managers_rules(prefix: str, tenant_id: str) -> None:
    name = ResourceNames(prefix, tenant_id).client_secret
    assert is_valid_secret_name(name)
    assert name == f"{prefix}/{tenant_id}/app-client/secret" and len(name) <= 512


@pytest.mark.parametrize(
    "name",
    [
        "tenants/acme/app-client-secret",  # "-" and six characters: read as a partial ARN
        "tenants/acme/secret-abcdef",
        "tenants/acme/sécret",
        "tenants/acme/a b",
        "",
        "x" * 513,
    ],
)
def test_names_secrets_manager_would_refuse_or_misread(name: str) -> None:
    assert not is_valid_secret_name(name)


def test_the_request_checker_never_prints_a_secret_string() -> None:
    model = botocore.session.get_session().get_service_model("secretsmanager").operation_model("CreateSecret")
    too_long = "S3CRET" * 11_000  # over the 65,536 characters Secrets Manager takes
    with pytest.raises(AwsParamViolation) as refused:
        check_params(params={"Name": NAMES.client_secret, "SecretString": too_long}, model=model)
    assert "SecretString" in str(refused.value) and "S3CRET" not in str(refused.value)
