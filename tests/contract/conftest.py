"""One cloud per test, in two kinds: the in-memory FakeCloud the unit tests use, and the real
gateways over HTTP against the emulator. Every contract test runs against both, so the fake
cannot drift from what the gateways do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from adapters.aws.clients import AwsClients
from adapters.aws.gateways import CognitoIdentityPoolGateway, CognitoUserPoolGateway, IamRoleGateway, SecretsManagerGateway
from adapters.aws.param_check import ParamChecker
from domain.ports import IamGateway, IdentityPoolGateway, SecretStore, UserPoolGateway
from domain.tenant import Cell
from tests.unit.fakes import CELL, FakeCloud

REGION = CELL.region


@dataclass(frozen=True)
class Cloud:
    kind: str  # "fake" | "emulator"
    cell: Cell
    user_pools: UserPoolGateway
    identity_pools: IdentityPoolGateway
    iam: IamGateway
    secrets: SecretStore


@pytest.fixture(scope="session")
async def contract_clients(emulator_endpoint: str) -> AsyncIterator[AwsClients]:
    async with AwsClients(
        region=REGION,
        endpoint_url=emulator_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
        retry_mode="standard",
        event_hooks=[ParamChecker().hook],  # every request checked against botocore's model
    ) as aws:
        yield aws


@pytest.fixture(scope="session")
async def emulator_cloud(contract_clients: AwsClients) -> Cloud:
    return Cloud(
        kind="emulator",
        cell=Cell(account_id=await contract_clients.caller_identity(), region=REGION),
        user_pools=CognitoUserPoolGateway(contract_clients),
        identity_pools=CognitoIdentityPoolGateway(contract_clients),
        iam=IamRoleGateway(contract_clients),
        secrets=SecretsManagerGateway(contract_clients),
    )


# Synchronous, so that it can pull in the async session fixtures with getfixturevalue.
@pytest.fixture(params=["fake", "emulator"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    if request.param == "emulator":
        emulator: Cloud = request.getfixturevalue("emulator_cloud")
        return emulator
    fake = FakeCloud()
    return Cloud(kind="fake", cell=CELL, user_pools=fake, identity_pools=fake, iam=fake, secrets=fake)
