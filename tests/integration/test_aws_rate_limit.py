"""The client-side Cognito rate limiter on real aioboto3 clients, against the emulator's quotas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from adapters.aws.clients import AwsClients
from adapters.aws.emulator import EmulatorServer, QuotaEnforcer, quota_stats
from adapters.aws.errors import aws_call
from adapters.aws.ratelimit import CognitoRateLimiter, Quota, parse_quotas
from domain.errors import CloudError


class FrozenClock:
    def __call__(self) -> float:
        return 1000.0


class RecordingLimiter(CognitoRateLimiter):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.acquired: list[tuple[str, str | None]] = []

    async def acquire(self, operation: str, pool_id: str | None = None) -> None:
        self.acquired.append((operation, pool_id))
        await super().acquire(operation, pool_id)


@pytest.fixture
def frozen_emulator() -> Iterator[EmulatorServer]:
    """Quotas on a clock that never moves: exactly a bucket's burst gets through."""
    with EmulatorServer(port=0, quotas=QuotaEnforcer("cognito", clock=FrozenClock())) as server:
        yield server


@asynccontextmanager
async def _clients(url: str, limiter: CognitoRateLimiter, max_attempts: int = 1) -> AsyncIterator[AwsClients]:
    async with AwsClients(
        region="us-east-1",
        endpoint_url=url,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=max_attempts,
        retry_mode="standard",
        event_hooks=limiter.hooks(),
    ) as clients:
        yield clients


async def _pool(clients: AwsClients) -> str:
    response = await aws_call(clients.client("cognito-idp"), "CreateUserPool", PoolName=f"rl-{uuid.uuid4().hex[:8]}")
    return str(response["UserPool"]["Id"])


async def test_every_attempt_waits_for_a_token_of_its_category_and_pool(frozen_emulator: EmulatorServer) -> None:
    # Generous client-side rates (nothing waits): what is measured is what the hooks report.
    limiter = RecordingLimiter({name: Quota(1000.0, 1000.0) for name in parse_quotas("")}, max_pools=100)
    async with _clients(frozen_emulator.endpoint_url, limiter, max_attempts=2) as clients:
        idp = clients.client("cognito-idp")
        pool = await _pool(clients)
        await aws_call(idp, "DescribeUserPool", UserPoolId=pool)  # not a limited operation
        for i in range(5):
            await aws_call(idp, "CreateGroup", UserPoolId=pool, GroupName=f"g{i}")
        limiter.acquired.clear()
        with pytest.raises(CloudError) as refused:
            await aws_call(idp, "CreateGroup", UserPoolId=pool, GroupName="g-over")
        assert refused.value.code == "TooManyRequestsException" and refused.value.retryable
        # Both attempts (botocore retried once) took a token, for this pool.
        assert limiter.acquired == [("CreateGroup", pool), ("CreateGroup", pool)]
        # Each throttle counted; the rate was halved once (not again within the cooldown), and has
        # been growing back since (by a tenth of the quota per second).
        snapshot = limiter.snapshot()["UserPoolResourceUpdate"]
        assert snapshot["throttles"] == 2 and 500.0 <= snapshot["rate"] < 1000.0
        assert limiter.snapshot()["UserPoolUpdate"]["throttles"] == 0


async def test_calls_paced_by_the_limiter_are_not_throttled() -> None:
    # The emulator allows 5/s per pool (a burst of 5); the client paces itself at 4/s per pool,
    # bursts of 2, so a burst of calls made at once is spread out instead of bouncing.
    with EmulatorServer(port=0, quotas="cognito") as server:
        limiter = CognitoRateLimiter(parse_quotas("UserPoolResourceUpdate=15/4"))
        async with _clients(server.endpoint_url, limiter) as clients:
            idp = clients.client("cognito-idp")
            pool = await _pool(clients)
            await asyncio.gather(
                *(aws_call(idp, "CreateGroup", UserPoolId=pool, GroupName=f"g{i}") for i in range(7))
            )
        stats = quota_stats(server.endpoint_url)["operations"]["CreateGroup"]
        assert (stats["admitted"], stats["throttled"]) == (7, 0)
        assert limiter.snapshot()["UserPoolResourceUpdate"]["throttles"] == 0
