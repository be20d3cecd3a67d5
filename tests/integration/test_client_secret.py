"""Confidential app clients over the emulator: the client secret goes to AWS Secrets Manager and
nowhere else.

The API shows the secret's ARN; Secrets Manager holds exactly what Cognito generated; the secret
is in no API response, no registry row (nor the SQLite file's bytes) and no log line of the app;
DELETE removes it. The gateway itself is checked too: a second CreateSecret for the same name
adopts the service's own secret and refuses anyone else's.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from botocore.exceptions import ClientError
from litestar.testing import AsyncTestClient

from adapters.aws.clients import AwsClients
from adapters.aws.gateways import SecretsManagerGateway
from adapters.aws.param_check import ParamChecker
from adapters.registry.engine import make_engine
from adapters.registry.migrate import upgrade
from domain.errors import CloudNotFound, ResourceNotOwned
from domain.naming import ResourceNames, ownership_tags
from domain.ports import SecretText
from domain.tenant import Cell
from service.app import create_app
from service.logs import configure_logging
from tests.helpers import API_KEY, boto, unique_id
from tests.integration.conftest import BACKENDS
from tests.integration.databases import throwaway_database

PREFIX = "csec"
REGION = "us-east-1"


# -- the gateway ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def secrets_gateway(emulator_endpoint: str) -> AsyncIterator[tuple[SecretsManagerGateway, Cell]]:
    async with AwsClients(
        region=REGION,
        endpoint_url=emulator_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
        event_hooks=[ParamChecker().hook],  # every request checked against botocore's model
    ) as aws:
        yield SecretsManagerGateway(aws), Cell(account_id=await aws.caller_identity(), region=REGION)


async def test_gateway_creates_adopts_its_own_and_deletes_without_recovery(
    secrets_gateway: tuple[SecretsManagerGateway, Cell], emulator_endpoint: str
) -> None:
    gateway, cell = secrets_gateway
    tenant_id = unique_id("gw")
    name, tags = ResourceNames(PREFIX, tenant_id).client_secret, ownership_tags(tenant_id)
    sm = boto("secretsmanager", emulator_endpoint)

    created = await gateway.put_client_secret(
        cell, name=name, secret_value=SecretText("first-value"), tags=tags, description="test"
    )
    assert created.arn and created.arn.startswith(f"arn:aws:secretsmanager:{REGION}:{cell.account_id}:secret:{name}-")
    assert created.tags == tags and "first-value" not in repr(created)
    # As after a lost response: the same name again adopts the secret and stores the new value.
    again = await gateway.put_client_secret(
        cell, name=name, secret_value=SecretText("second-value"), tags=tags, description="test"
    )
    assert again.arn == created.arn
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "second-value"
    assert [s["ARN"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]] == [created.arn]

    found = await gateway.find_secret(cell, name=created.arn)  # by ARN, and by name
    assert found is not None and found.tags == tags and found == await gateway.find_secret(cell, name=name)
    assert created.arn in {s.arn for s in await gateway.list_owned_secrets(cell)}

    await gateway.delete_secret(cell, arn_or_name=created.arn)
    assert await gateway.find_secret(cell, name=name) is None
    with pytest.raises(ClientError) as gone:
        sm.describe_secret(SecretId=created.arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # No recovery window holds the name: the same name can be created again at once.
    reborn = await gateway.put_client_secret(cell, name=name, secret_value=SecretText("x" * 8), tags=tags, description="t")
    await gateway.delete_secret(cell, arn_or_name=reborn.arn or name)
    with contextlib.suppress(CloudNotFound):  # AWS may answer a forced delete of nothing with success
        await gateway.delete_secret(cell, arn_or_name=name)


async def test_gateway_refuses_someone_elses_secret_and_leaves_it_untouched(
    secrets_gateway: tuple[SecretsManagerGateway, Cell], emulator_endpoint: str
) -> None:
    gateway, cell = secrets_gateway
    tenant_id = unique_id("gw")
    name = ResourceNames(PREFIX, tenant_id).client_secret
    sm = boto("secretsmanager", emulator_endpoint)
    sm.create_secret(Name=name, SecretString="theirs", Tags=[{"Key": "team", "Value": "payments"}])

    with pytest.raises(ResourceNotOwned):
        await gateway.put_client_secret(
            cell, name=name, secret_value=SecretText("ours"), tags=ownership_tags(tenant_id), description="test"
        )
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "theirs"
    assert name not in {s.name for s in await gateway.list_owned_secrets(cell)}


# -- the API, on SQLite and PostgreSQL --------------------------------------------------------


@dataclass
class Run:
    client: Any
    database_url: str
    sqlite_path: Path | None
    log: Path


@pytest.fixture(scope="module", params=BACKENDS)
def postgres_for_secrets(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server_url")


@pytest.fixture(scope="module")
async def run(
    postgres_for_secrets: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Run]:
    tmp = tmp_path_factory.mktemp("client-secret")
    log_path = tmp / "app.log"
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    async with contextlib.AsyncExitStack() as stack:
        # Every log line of the app, from start-up to shutdown, as JSON lines in one file.
        log_file = stack.enter_context(log_path.open("w"))
        configure_logging("json", "DEBUG", stream=log_file)

        def restore_logging() -> None:
            structlog.configure(**saved_structlog)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)

        stack.callback(restore_logging)
        sqlite_path = None
        if postgres_for_secrets is None:
            sqlite_path = tmp / "registry.db"
            url = f"sqlite+aiosqlite:///{sqlite_path}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres_for_secrets))
        await upgrade(url)
        app = create_app(
            database_url=url,
            aws_endpoint_url=emulator_endpoint,
            aws_strict_params=True,
            aws_max_attempts=2,
            bootstrap_api_key=API_KEY,
            resource_prefix=PREFIX,
            poll_interval_s=0.05,
            var_dir=tmp,
        )
        client = await stack.enter_async_context(AsyncTestClient(app))
        client.headers.update({"Authorization": f"Bearer {API_KEY}"})
        yield Run(client, url, sqlite_path, log_path)


async def registry_rows(url: str) -> str:
    """Every row of every registry table, as text."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            rows = []
            for table in tables:
                result = await conn.execute(sa.text(f'SELECT * FROM "{table}"'))
                rows += [repr(tuple(row)) for row in result]
    finally:
        await engine.dispose()
    return "\n".join(rows)


def sqlite_bytes(path: Path) -> bytes:
    # WAL mode: recent writes may sit in the -wal file.
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_the_client_secret_is_in_secrets_manager_and_nowhere_else(run: Run, emulator_endpoint: str) -> None:
    client, tenant_id = run.client, unique_id("conf")
    body = {"tenant_id": tenant_id, "tier": "premium", "display_name": "Confidential Corp"}
    created = await client.post("/v1/tenants", json=body, headers={"Prefer": "wait=30"})
    assert created.status_code == 201, created.text
    res = created.json()["resources"]
    arn = res["app_client_secret_arn"]
    assert arn and arn.startswith(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{PREFIX}/{tenant_id}/app-client/secret-")
    fetched = await client.get(f"/v1/tenants/{tenant_id}")
    assert fetched.json()["resources"] == res

    # Secrets Manager holds exactly what Cognito generated, tagged as the service's own.
    idp, sm = boto("cognito-idp", emulator_endpoint), boto("secretsmanager", emulator_endpoint)
    app_client = idp.describe_user_pool_client(UserPoolId=res["user_pool_id"], ClientId=res["app_client_id"])["UserPoolClient"]
    secret = app_client["ClientSecret"]
    assert len(secret) >= 20
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == secret
    described = sm.describe_secret(SecretId=arn)
    assert described["Name"] == f"{PREFIX}/{tenant_id}/app-client/secret"
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == ownership_tags(tenant_id)

    listing = await client.get("/v1/tenants", params={"tier": "premium", "limit": 200})
    deleted = await client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"
    assert deleted.json()["resources"]["app_client_secret_arn"] is None
    with pytest.raises(ClientError) as gone:
        sm.describe_secret(SecretId=arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # Not in any API response...
    for response in (created, fetched, listing, deleted):
        assert secret not in response.text
    # ...nor in the registry (the ARN was there: the dump really holds the tenant's rows)...
    rows = await registry_rows(run.database_url)
    assert tenant_id in rows and secret not in rows
    if run.sqlite_path is not None:
        assert secret.encode() not in sqlite_bytes(run.sqlite_path)
    # ...nor in a log line of the app.
    text = run.log.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    steps = {e.get("step") for e in events if e.get("event") == "step_finished" and e.get("tenant_id") == tenant_id}
    assert {"client_secret", "delete_client_secret"} <= steps  # the capture works
    assert secret not in text


async def test_a_public_client_tier_stores_no_secret(run: Run, emulator_endpoint: str) -> None:
    tenant_id = unique_id("pub")
    body = {"tenant_id": tenant_id, "tier": "standard", "display_name": "Public Corp"}
    created = await run.client.post("/v1/tenants", json=body, headers={"Prefer": "wait=30"})
    assert created.status_code == 201, created.text
    assert created.json()["resources"]["app_client_secret_arn"] is None
    with pytest.raises(ClientError):
        boto("secretsmanager", emulator_endpoint).describe_secret(SecretId=ResourceNames(PREFIX, tenant_id).client_secret)
    # Teardown looks for a secret by name anyway (one created before a crash is never recorded)
    # and finds none: the tenant is deleted all the same.
    deleted = await run.client.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
