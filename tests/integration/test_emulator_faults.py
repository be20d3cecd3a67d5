"""The emulator's fault layer (adapters/aws/emulator/faults.py) over real HTTP.

Each test has its own EmulatorServer (faults would break the shared emulator's other users);
moto's state is process-global, so every resource name is unique. boto3 makes one attempt
only, so each fault surfaces as the caller would first see it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from click.testing import CliRunner

from adapters.aws.emulator import EmulatorServer, FaultConfig, clear_faults, fault_stats, set_faults
from adapters.aws.emulator.faults import FaultSpecError
from service.cli import main as tenantctl_main
from tests.integration.test_cli import clean_env, free_port, port_open, stop, tenantctl

REGION = "us-east-1"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
THROTTLE, SERVER_ERROR, LOST, OK = "throttle", "server_error", "lost", "ok"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as emulator:
        yield emulator


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=10),
    )


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# What each random kind looks like to a boto3 caller: (error code, HTTP status).
COGNITO = {THROTTLE: ("TooManyRequestsException", 400), SERVER_ERROR: ("InternalErrorException", 500)}
EXPECTED = {
    "cognito-idp": COGNITO,
    "cognito-identity": COGNITO,
    "iam": {THROTTLE: ("Throttling", 400), SERVER_ERROR: ("ServiceFailure", 500)},
}


def _outcome(service: str, call: Callable[[], Any]) -> str:
    """Run one call and name what happened, checking each fault has its service's exact shape."""
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        for kind, expected in EXPECTED[service].items():
            if (code, status) == expected:
                if service == "iam":  # query protocol: the <Type> element is parsed too
                    assert error.response["Error"]["Type"] == ("Sender" if status < 500 else "Receiver")
                return kind
        raise AssertionError(f"unexpected error from {service}: {code} {status}") from None
    except ConnectionClosedError:
        return LOST
    return OK


def _pool_names(idp: Any) -> set[str]:
    names: set[str] = set()
    for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60):
        names.update(pool["Name"] for pool in page["UserPools"])
    return names


def _role_exists(iam: Any, name: str) -> bool:
    try:
        iam.get_role(RoleName=name)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchEntity"
        return False
    return True


def _assert_stats_add_up(stats: dict[str, Any]) -> None:
    assert sum(stats["by_kind"].values()) == stats["faulted"]
    assert sum(op["calls"] for op in stats["by_operation"].values()) == stats["calls"]
    per_kind: Counter[str] = Counter()
    for op in stats["by_operation"].values():
        per_kind.update({kind: n for kind, n in op.items() if kind != "calls"})
        assert sum(n for kind, n in op.items() if kind != "calls") <= op["calls"]
    assert {k: v for k, v in stats["by_kind"].items() if v} == dict(per_kind)


# --- random faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "kwargs"),
    [
        ("cognito-idp", "list_user_pools", {"MaxResults": 1}),
        ("cognito-identity", "list_identity_pools", {"MaxResults": 1}),
        ("iam", "list_roles", {"MaxItems": 1}),
    ],
)
def test_rate_one_faults_every_call_with_all_three_kinds(
    server: EmulatorServer, service: str, operation: str, kwargs: dict[str, Any]
) -> None:
    url = server.endpoint_url
    set_faults(url, rate=1.0, seed=2)  # a seed that draws all three kinds in 15 calls
    client = _client(url, service)
    outcomes = Counter(_outcome(service, lambda: getattr(client, operation)(**kwargs)) for _ in range(15))
    assert set(outcomes) == {THROTTLE, SERVER_ERROR, LOST}, outcomes

    stats = fault_stats(url)["stats"]
    assert stats["calls"] == stats["faulted"] == 15
    assert {kind: stats["by_kind"][kind] for kind in outcomes} == dict(outcomes)
    _assert_stats_add_up(stats)


def test_throttles_and_5xx_are_not_executed_and_lost_responses_are(server: EmulatorServer) -> None:
    url = server.endpoint_url
    idp, iam = _client(url, "cognito-idp"), _client(url, "iam")
    set_faults(url, rate=1.0, seed=11)
    pools, roles = {}, {}
    for _ in range(9):
        pool, role = _name("fault-pool"), _name("fault-role")
        pools[pool] = _outcome("cognito-idp", lambda pool=pool: idp.create_user_pool(PoolName=pool))
        roles[role] = _outcome("iam", lambda role=role: iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST))
    assert LOST in pools.values() and LOST in roles.values()
    assert {THROTTLE, SERVER_ERROR} & set(pools.values()) and {THROTTLE, SERVER_ERROR} & set(roles.values())

    set_faults(url, rate=0.0)
    listed = _pool_names(idp)
    for name, outcome in pools.items():
        assert (name in listed) == (outcome == LOST), (name, outcome)
    for name, outcome in roles.items():
        assert _role_exists(iam, name) == (outcome == LOST), (name, outcome)


def test_rate_zero_faults_nothing(server: EmulatorServer) -> None:
    url = server.endpoint_url
    idp, iam = _client(url, "cognito-idp"), _client(url, "iam")
    for i in range(50):
        if i % 2:
            idp.list_user_pools(MaxResults=1)
        else:
            iam.list_roles(MaxItems=1)
    stats = fault_stats(url)["stats"]
    assert stats["calls"] == 50 and stats["faulted"] == 0
    assert stats["by_operation"]["cognito-idp:ListUserPools"] == {"calls": 25}
    assert stats["by_operation"]["iam:ListRoles"] == {"calls": 25}


def _sequence(url: str) -> list[str]:
    idp, iam = _client(url, "cognito-idp"), _client(url, "iam")
    outcomes = []
    for i in range(30):
        if i % 3:
            outcomes.append(_outcome("cognito-idp", lambda: idp.list_user_pools(MaxResults=1)))
        else:
            outcomes.append(_outcome("iam", lambda: iam.list_roles(MaxItems=1)))
    return outcomes


def test_a_seed_reproduces_the_fault_sequence() -> None:
    with EmulatorServer(port=0, fault_rate=0.3, fault_seed=42) as first:
        one = _sequence(first.endpoint_url)
    with EmulatorServer(port=0, fault_rate=0.3, fault_seed=42) as second:
        two = _sequence(second.endpoint_url)
        # Re-seeding at run time restarts the same sequence.
        set_faults(second.endpoint_url, rate=0.3, seed=42)
        three = _sequence(second.endpoint_url)
        set_faults(second.endpoint_url, rate=0.3, seed=43)
        other = _sequence(second.endpoint_url)
    assert one == two == three
    assert 0 < sum(outcome != OK for outcome in one) < 30
    assert other != one


def test_get_caller_identity_and_moto_api_are_never_faulted() -> None:
    with EmulatorServer(port=0, fault_rate=1.0, fault_seed=1) as emulator:
        sts = _client(emulator.endpoint_url, "sts")
        for _ in range(20):
            assert sts.get_caller_identity()["Account"] == "123456789012"
        for _ in range(5):
            with urllib.request.urlopen(f"{emulator.endpoint_url}/moto-api/data.json", timeout=10) as response:
                assert response.status == 200
        snapshot = fault_stats(emulator.endpoint_url)
    assert snapshot["rate"] == 1.0 and snapshot["seed"] == 1
    assert snapshot["exempt"] == ["sts:GetCallerIdentity"]
    assert snapshot["stats"]["exempt_calls"] == 20
    assert snapshot["stats"]["calls"] == snapshot["stats"]["faulted"] == 0


def test_dropped_responses_leave_the_server_serving_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    with EmulatorServer(port=0, log_requests=True) as emulator:
        url = emulator.endpoint_url
        idp = _client(url, "cognito-idp")
        set_faults(url, operation="ListUserPools", mode="lost", count=10)
        for _ in range(10):
            with pytest.raises(ConnectionClosedError):
                idp.list_user_pools(MaxResults=1)
        assert "UserPools" in idp.list_user_pools(MaxResults=1)
        assert fault_stats(url)["stats"]["by_kind"]["targeted_lost"] == 10
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error on request" not in err


# --- targeted faults --------------------------------------------------------------------------


def test_targeted_lost_create_user_pool_still_creates_it(server: EmulatorServer) -> None:
    url = server.endpoint_url
    idp = _client(url, "cognito-idp")
    name = _name("lost-pool")
    set_faults(url, operation="CreateUserPool", mode="lost")
    with pytest.raises(ConnectionClosedError):
        idp.create_user_pool(PoolName=name)
    assert name in _pool_names(idp)
    assert fault_stats(url)["targeted"] == []  # count 1, used up


def test_targeted_lost_create_role_still_creates_it(server: EmulatorServer) -> None:
    url = server.endpoint_url
    iam = _client(url, "iam")
    name = _name("lost-role")
    set_faults(url, operation="CreateRole", mode="lost")
    with pytest.raises(ConnectionClosedError):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name


def test_targeted_cognito_quota_fails_once_then_the_call_succeeds(server: EmulatorServer) -> None:
    url = server.endpoint_url
    identity = _client(url, "cognito-identity")
    name = f"quota_{uuid.uuid4().hex[:10]}"
    config = set_faults(
        url,
        operation="CreateIdentityPool",
        error="LimitExceededException",
        message="The maximum number of identity pools has been reached",
        count=1,
    )
    assert config["targeted"][0]["remaining"] == 1
    with pytest.raises(ClientError) as excinfo:
        identity.create_identity_pool(IdentityPoolName=name, AllowUnauthenticatedIdentities=False)
    error = excinfo.value.response
    assert error["Error"]["Code"] == "LimitExceededException"
    assert error["Error"]["Message"] == "The maximum number of identity pools has been reached"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    listed = identity.list_identity_pools(MaxResults=60)["IdentityPools"]
    assert not any(pool["IdentityPoolName"] == name for pool in listed)

    created = identity.create_identity_pool(IdentityPoolName=name, AllowUnauthenticatedIdentities=False)
    assert created["IdentityPoolName"] == name
    stats = fault_stats(url)["stats"]
    assert stats["by_operation"]["cognito-identity:CreateIdentityPool"] == {"calls": 2, "targeted_error": 1}


def test_targeted_iam_quota_is_a_limit_exceeded_and_creates_nothing(server: EmulatorServer) -> None:
    url = server.endpoint_url
    iam = _client(url, "iam")
    name = _name("quota-role")
    set_faults(
        url,
        operation="CreateRole",
        error="LimitExceeded",
        message="Cannot exceed quota for RolesPerAccount: 1000",
        status=409,  # IAM's status for LimitExceeded
    )
    with pytest.raises(ClientError) as excinfo:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    assert excinfo.value.response["Error"]["Code"] == "LimitExceeded"
    assert excinfo.value.response["Error"]["Type"] == "Sender"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert not _role_exists(iam, name)


@pytest.mark.parametrize(
    ("service", "operation", "error", "call"),
    [
        ("cognito-idp", "CreateUserPool", "InvalidParameterException",
         lambda c: c.create_user_pool(PoolName=_name("bad-pool"))),
        ("iam", "CreateRole", "InvalidInput",
         lambda c: c.create_role(RoleName=_name("bad-role"), AssumeRolePolicyDocument=TRUST)),
    ],
)
def test_targeted_invalid_parameter_errors(
    server: EmulatorServer, service: str, operation: str, error: str, call: Callable[[Any], Any]
) -> None:
    set_faults(server.endpoint_url, operation=operation, error=error, service=service)
    with pytest.raises(ClientError) as excinfo:
        call(_client(server.endpoint_url, service))
    assert excinfo.value.response["Error"]["Code"] == error


def test_targeted_faults_match_the_service_when_given_and_last_until_cleared(server: EmulatorServer) -> None:
    url = server.endpoint_url
    idp, identity = _client(url, "cognito-idp"), _client(url, "cognito-identity")
    set_faults(url, operation="ListUserPools", error="TooManyRequestsException", count=None, service="cognito-idp")
    set_faults(url, operation="ListIdentityPools", error="LimitExceededException", service="iam")  # never matches
    for _ in range(3):
        with pytest.raises(ClientError):
            idp.list_user_pools(MaxResults=1)
    identity.list_identity_pools(MaxResults=1)
    targeted = fault_stats(url)["targeted"]
    remaining = [(t["operation"], t["remaining"]) for t in targeted]
    assert remaining == [("ListUserPools", None), ("ListIdentityPools", 1)]

    assert clear_faults(url)["targeted"] == []
    idp.list_user_pools(MaxResults=1)


def test_stats_add_up_over_a_mixed_run(server: EmulatorServer) -> None:
    url = server.endpoint_url
    idp, iam = _client(url, "cognito-idp"), _client(url, "iam")
    set_faults(url, rate=0.5, seed=5)
    set_faults(url, operation="ListRoles", error="Throttling", count=2)
    set_faults(url, operation="ListUserPools", mode="lost", count=2)
    for _ in range(10):
        _outcome("cognito-idp", lambda: idp.list_user_pools(MaxResults=1))
        try:
            iam.list_roles(MaxItems=1)
        except (ClientError, ConnectionClosedError):
            pass
    stats = fault_stats(url)["stats"]
    assert stats["calls"] == 20
    assert stats["by_kind"]["targeted_error"] == 2 and stats["by_kind"]["targeted_lost"] == 2
    assert 4 < stats["faulted"] < 20
    _assert_stats_add_up(stats)

    assert set_faults(url, reset_stats=True)["stats"]["calls"] == 0


# --- control endpoint and configuration ------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"rate": 1.5},
        {"rate": "high"},
        {"seed": "x"},
        {"operation": "CreateRole"},  # mode "error" needs an error code
        {"operation": "CreateRole", "mode": "vanish"},
        {"operation": "CreateRole", "error": "X", "count": 0},
        {"operation": "CreateRole", "error": "X", "status": 200},
        {"error": "X"},
        {"colour": "red"},
    ],
)
def test_control_endpoint_rejects_bad_specs(server: EmulatorServer, spec: dict[str, Any]) -> None:
    with pytest.raises(FaultSpecError, match="HTTP 400"):
        set_faults(server.endpoint_url, **spec)
    assert fault_stats(server.endpoint_url)["rate"] == 0.0


def test_fault_config_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate=-0.1)


def test_tenantctl_emulator_takes_fault_options() -> None:
    runner = CliRunner()
    help_text = runner.invoke(tenantctl_main, ["emulator", "--help"]).output
    assert "--fault-rate" in help_text and "--fault-seed" in help_text
    assert runner.invoke(tenantctl_main, ["emulator", "--fault-rate", "1.5"]).exit_code == 2

    port = free_port()
    proc = subprocess.Popen(
        [*tenantctl(), "emulator", "--port", str(port), "--fault-rate", "1", "--fault-seed", "9"],
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
        assert _client(url, "sts").get_caller_identity()["Account"] == "123456789012"
        assert _outcome("iam", lambda: _client(url, "iam").list_roles(MaxItems=1)) != OK
        snapshot = fault_stats(url)
        assert (snapshot["rate"], snapshot["seed"]) == (1.0, 9)
        assert snapshot["stats"]["faulted"] == 1
    finally:
        stop(proc)
