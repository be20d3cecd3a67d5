"""The emulator's Cognito quotas (adapters/aws/emulator/quotas.py) over real HTTP.

Each test has its own EmulatorServer whose enforcer reads a hand-moved clock, so what is admitted
is exact, not a matter of how fast the machine is. moto's state is process-global: names are
unique. boto3 makes one attempt only, so a throttle surfaces as the caller first sees it.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from adapters.aws.emulator import EmulatorServer, QuotaEnforcer, quota_stats
from service.cli import main as tenantctl_main
from tests.integration.test_cli import clean_env, free_port, port_open, stop, tenantctl

REGION = "us-east-1"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(clock: ManualClock) -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, quotas=QuotaEnforcer("cognito", clock=clock)) as emulator:
        yield emulator


def _idp(url: str) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=10),
    )


def _throttled(call: Any) -> bool:
    try:
        call()
    except ClientError as exc:
        error, meta = exc.response["Error"], exc.response["ResponseMetadata"]
        assert (error["Code"], meta["HTTPStatusCode"], error["Message"]) == ("TooManyRequestsException", 400, "Rate exceeded")
        return True
    return False


def _pool(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName=f"q-{uuid.uuid4().hex[:10]}")["UserPool"]["Id"])


def test_create_user_pool_beyond_the_rate_is_throttled_and_not_executed(server: EmulatorServer, clock: ManualClock) -> None:
    idp, prefix = _idp(server.endpoint_url), f"qa-{uuid.uuid4().hex[:8]}"
    outcomes = [_throttled(lambda i=i: idp.create_user_pool(PoolName=f"{prefix}-{i}")) for i in range(17)]
    assert outcomes == [False] * 15 + [True] * 2  # UserPoolUpdate: 15/s, a burst of one second's worth
    # UpdateUserPool and DeleteUserPool share the category: they wait for tokens too.
    pools = [p for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"].startswith(prefix)]
    assert len(pools) == 15  # the throttled calls created nothing
    assert _throttled(lambda: idp.delete_user_pool(UserPoolId=pools[0]["Id"]))
    assert not _throttled(lambda: idp.describe_user_pool(UserPoolId=pools[0]["Id"]))  # not a limited category

    clock.now += 1 / 15  # one token back
    assert not _throttled(lambda: idp.create_user_pool(PoolName=f"{prefix}-late"))
    assert _throttled(lambda: idp.create_user_pool(PoolName=f"{prefix}-later"))

    stats = quota_stats(server.endpoint_url)
    assert stats["profile"] == "cognito"
    assert stats["operations"]["CreateUserPool"]["admitted"] == 16
    assert stats["operations"]["CreateUserPool"]["throttled"] == 3
    assert (stats["operations"]["DeleteUserPool"]["admitted"], stats["operations"]["DeleteUserPool"]["throttled"]) == (0, 1)
    assert stats["throttled"] == 4


def test_groups_are_limited_per_pool_and_per_account(server: EmulatorServer, clock: ManualClock) -> None:
    idp = _idp(server.endpoint_url)
    pools = [_pool(idp) for _ in range(4)]  # UserPoolUpdate tokens: 4 of 15

    def group(pool: str) -> bool:
        return _throttled(lambda: idp.create_group(UserPoolId=pool, GroupName=f"g-{uuid.uuid4().hex[:8]}"))

    # UserPoolResourceUpdate: 5/s on any one pool ...
    assert [group(pools[0]) for _ in range(6)] == [False] * 5 + [True]
    # ... a domain counts against the same pool ...
    assert _throttled(lambda: idp.create_user_pool_domain(UserPoolId=pools[0], Domain=f"d{uuid.uuid4().hex[:10]}"))
    # ... and a call refused on the pool's rate costs the account nothing: 10 more on two other pools,
    assert [group(pools[1]) for _ in range(5)] + [group(pools[2]) for _ in range(5)] == [False] * 10
    # and then the account's 15 are used up, on a pool that has sent nothing yet.
    assert group(pools[3])

    clock.now += 1.0  # a second later every bucket is full again
    assert [group(pools[0]) for _ in range(5)] == [False] * 5

    stats = quota_stats(server.endpoint_url)["operations"]
    assert stats["CreateGroup"]["admitted"] == 20 and stats["CreateGroup"]["throttled"] == 2
    assert stats["CreateUserPoolDomain"]["throttled"] == 1


def test_app_clients_have_their_own_category(server: EmulatorServer, clock: ManualClock) -> None:
    idp = _idp(server.endpoint_url)
    pool = _pool(idp)
    for _ in range(5):
        idp.create_group(UserPoolId=pool, GroupName=f"g-{uuid.uuid4().hex[:8]}")  # the pool's resource budget
    outcomes = [
        _throttled(lambda: idp.create_user_pool_client(UserPoolId=pool, ClientName=f"c-{uuid.uuid4().hex[:6]}"))
        for _ in range(6)
    ]
    assert outcomes == [False] * 5 + [True]


def test_without_quotas_nothing_is_throttled_and_the_endpoint_says_so() -> None:
    with EmulatorServer(port=0) as emulator:
        idp = _idp(emulator.endpoint_url)
        assert not any(_throttled(lambda: _pool(idp)) for _ in range(20))
        assert quota_stats(emulator.endpoint_url) == {"profile": None, "throttled": 0, "operations": {}}


def test_reset_stats(server: EmulatorServer) -> None:
    import json
    import urllib.request

    _pool(_idp(server.endpoint_url))
    request = urllib.request.Request(
        server.endpoint_url + "/_emulator/quotas", data=json.dumps({"reset_stats": True}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["operations"] == {}


def test_tenantctl_emulator_takes_the_quotas_option() -> None:
    runner = CliRunner()
    assert "--quotas" in runner.invoke(tenantctl_main, ["emulator", "--help"]).output
    assert runner.invoke(tenantctl_main, ["emulator", "--quotas", "s3"]).exit_code == 2

    port = free_port()
    proc = subprocess.Popen(
        [*tenantctl(), "emulator", "--port", str(port), "--quotas", "cognito"],
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None, f"the emulator exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the emulator did not listen within 10 s"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        idp = _idp(url)
        pool = _pool(idp)
        # A burst well over 5 on one pool, far faster than 5/s: the real clock throttles some.
        outcomes = [_throttled(lambda i=i: idp.create_group(UserPoolId=pool, GroupName=f"g{i}")) for i in range(12)]
        stats = quota_stats(url)
        assert stats["profile"] == "cognito"
        assert stats["operations"]["CreateGroup"]["throttled"] == sum(outcomes)
    finally:
        stop(proc)
