"""The local AWS emulator over real HTTP: its extensions, and moto still working behind them."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from adapters.aws.emulator import EmulatorServer

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/tenants/t1-authenticated"
UNAUTH_ROLE_ARN = "arn:aws:iam::123456789012:role/t1-unauthenticated"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as server:
        yield server


def _client(emulator: EmulatorServer, service: str, region: str = REGION) -> Any:
    return boto3.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # One attempt: an error must surface as it is, not after botocore's retries.
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def idp(emulator: EmulatorServer) -> Any:
    return _client(emulator, "cognito-idp")


@pytest.fixture(scope="module")
def identity(emulator: EmulatorServer) -> Any:
    return _client(emulator, "cognito-identity")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def _user_pool(idp: Any, **kwargs: Any) -> dict[str, Any]:
    pool: dict[str, Any] = idp.create_user_pool(PoolName=_name("pool"), **kwargs)["UserPool"]
    return pool


def _pool_exists(idp: Any, pool_id: str) -> bool:
    try:
        idp.describe_user_pool(UserPoolId=pool_id)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


# --- moto behind the middleware ---------------------------------------------------------------


def test_ordinary_moto_calls_pass_through(
    emulator: EmulatorServer, idp: Any, identity: Any
) -> None:
    pool = _user_pool(idp)
    client = idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName="app")["UserPoolClient"]
    assert (
        idp.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=client["ClientId"])[
            "UserPoolClient"
        ]["ClientName"]
        == "app"
    )

    provider = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
    created = identity.create_identity_pool(
        IdentityPoolName="tenant_pool",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": client["ClientId"]}],
    )
    described = identity.describe_identity_pool(IdentityPoolId=created["IdentityPoolId"])
    assert described["CognitoIdentityProviders"][0]["ProviderName"] == provider

    iam = _client(emulator, "iam")
    role_name = _name("role")
    iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    assert (
        iam.get_role(RoleName=role_name)["Role"]["Arn"]
        == f"arn:aws:iam::123456789012:role/{role_name}"
    )


def test_moto_errors_still_come_from_moto(idp: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        idp.delete_user_pool(UserPoolId="us-east-1_doesnotexist")
    assert _error(excinfo)[0] == "ResourceNotFoundException"


# --- deletion protection ----------------------------------------------------------------------


def test_deletion_protection_is_reported_with_its_default(idp: Any) -> None:
    created = _user_pool(idp)
    assert created["DeletionProtection"] == "INACTIVE"
    described = idp.describe_user_pool(UserPoolId=created["Id"])["UserPool"]
    assert described["DeletionProtection"] == "INACTIVE"

    protected = _user_pool(idp, DeletionProtection="ACTIVE")
    assert protected["DeletionProtection"] == "ACTIVE"
    assert (
        idp.describe_user_pool(UserPoolId=protected["Id"])["UserPool"]["DeletionProtection"]
        == "ACTIVE"
    )


def test_deletion_protection_blocks_delete_until_deactivated(idp: Any) -> None:
    pool_id = _user_pool(idp, DeletionProtection="ACTIVE")["Id"]

    with pytest.raises(ClientError) as excinfo:
        idp.delete_user_pool(UserPoolId=pool_id)
    code, message = _error(excinfo)
    assert code == "InvalidParameterException"
    assert "deletion protection" in message
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    assert _pool_exists(idp, pool_id)

    idp.update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
    assert (
        idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["DeletionProtection"] == "INACTIVE"
    )
    idp.delete_user_pool(UserPoolId=pool_id)
    assert not _pool_exists(idp, pool_id)


def test_update_user_pool_keeps_protection_it_is_given(idp: Any) -> None:
    pool_id = _user_pool(idp)["Id"]
    idp.update_user_pool(UserPoolId=pool_id, DeletionProtection="ACTIVE", MfaConfiguration="OFF")
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["DeletionProtection"] == "ACTIVE"
    with pytest.raises(ClientError) as excinfo:
        idp.delete_user_pool(UserPoolId=pool_id)
    assert _error(excinfo)[0] == "InvalidParameterException"


def test_update_user_pool_omitting_protection_resets_it_to_the_default(idp: Any) -> None:
    # AWS: "If you don't provide a value for an attribute, Amazon Cognito sets it to its default".
    pool_id = _user_pool(idp, DeletionProtection="ACTIVE")["Id"]
    idp.update_user_pool(UserPoolId=pool_id)
    assert (
        idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["DeletionProtection"] == "INACTIVE"
    )


def test_unknown_deletion_protection_value_is_rejected(idp: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        idp.create_user_pool(PoolName=_name("pool"), DeletionProtection="ON")
    assert _error(excinfo)[0] == "InvalidParameterException"


# --- domains ----------------------------------------------------------------------------------


def test_domain_blocks_delete_until_removed(idp: Any) -> None:
    pool_id = _user_pool(idp)["Id"]
    domain = _name("tenant")
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)

    with pytest.raises(ClientError) as excinfo:
        idp.delete_user_pool(UserPoolId=pool_id)
    assert _error(excinfo) == (
        "InvalidParameterException",
        "User pool cannot be deleted. It has a domain configured that should be deleted first.",
    )
    assert _pool_exists(idp, pool_id)

    idp.delete_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    idp.delete_user_pool(UserPoolId=pool_id)
    assert not _pool_exists(idp, pool_id)


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("my-aws-login", "reserved word: aws"),
        ("amazonlogin", "reserved word: amazon"),
        ("login-cognito", "reserved word: cognito"),
        ("Tenant", "invalid character"),
        ("tenant_one", "invalid character"),
        ("-tenant", "invalid character"),
        ("tenant-", "invalid character"),
        ("a" * 64, "invalid character"),
    ],
)
def test_bad_prefix_domains_are_rejected(idp: Any, domain: str, reason: str) -> None:
    pool_id = _user_pool(idp)["Id"]
    with pytest.raises(ClientError) as excinfo:
        idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    code, message = _error(excinfo)
    assert code == "InvalidParameterException"
    assert reason in message
    assert idp.describe_user_pool_domain(Domain=domain)["DomainDescription"] == {}


def test_valid_prefix_domain_is_accepted(idp: Any) -> None:
    pool_id = _user_pool(idp)["Id"]
    domain = "t" + uuid.uuid4().hex[:12] + "-login"
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    assert (
        idp.describe_user_pool_domain(Domain=domain)["DomainDescription"]["UserPoolId"] == pool_id
    )
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Domain"] == domain


def test_domain_held_by_another_pool_is_rejected(idp: Any) -> None:
    holder = _user_pool(idp)["Id"]
    other = _user_pool(idp)["Id"]
    domain = _name("shared")
    idp.create_user_pool_domain(UserPoolId=holder, Domain=domain)

    with pytest.raises(ClientError) as excinfo:
        idp.create_user_pool_domain(UserPoolId=other, Domain=domain)
    assert _error(excinfo) == (
        "InvalidParameterException",
        "Domain already associated with another user pool.",
    )
    assert idp.describe_user_pool_domain(Domain=domain)["DomainDescription"]["UserPoolId"] == holder


def test_domain_for_unknown_pool_is_not_found(idp: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        idp.create_user_pool_domain(UserPoolId="us-east-1_doesnotexist", Domain=_name("orphan"))
    assert _error(excinfo)[0] == "ResourceNotFoundException"


# --- user pool tags ---------------------------------------------------------------------------


def test_tags_round_trip_and_share_describe_user_pool(idp: Any) -> None:
    pool = _user_pool(idp, UserPoolTags={"tenant": "t1"})
    arn = pool["Arn"]
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"tenant": "t1"}

    idp.tag_resource(ResourceArn=arn, Tags={"owner": "provisioner", "tenant": "t1"})
    assert idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]["UserPoolTags"] == {
        "tenant": "t1",
        "owner": "provisioner",
    }

    idp.untag_resource(ResourceArn=arn, TagKeys=["tenant", "never-set"])
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"owner": "provisioner"}
    assert idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]["UserPoolTags"] == {
        "owner": "provisioner"
    }


def test_update_user_pool_without_tags_keeps_them(idp: Any) -> None:
    pool = _user_pool(idp, UserPoolTags={"tenant": "t2"})
    idp.tag_resource(ResourceArn=pool["Arn"], Tags={"owner": "provisioner"})
    idp.update_user_pool(UserPoolId=pool["Id"], DeletionProtection="INACTIVE")
    assert idp.list_tags_for_resource(ResourceArn=pool["Arn"])["Tags"] == {
        "tenant": "t2",
        "owner": "provisioner",
    }

    idp.update_user_pool(UserPoolId=pool["Id"], UserPoolTags={"tenant": "t3"})
    assert idp.list_tags_for_resource(ResourceArn=pool["Arn"])["Tags"] == {"tenant": "t3"}


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("tag_resource", {"Tags": {"a": "b"}}),
        ("untag_resource", {"TagKeys": ["a"]}),
        ("list_tags_for_resource", {}),
    ],
)
def test_tags_on_unknown_pool_are_not_found(
    idp: Any, operation: str, kwargs: dict[str, Any]
) -> None:
    arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_doesnotexist"
    with pytest.raises(ClientError) as excinfo:
        getattr(idp, operation)(ResourceArn=arn, **kwargs)
    assert _error(excinfo)[0] == "ResourceNotFoundException"


def test_tags_with_a_malformed_arn_are_invalid(idp: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        idp.list_tags_for_resource(ResourceArn="arn:aws:iam::123456789012:role/not-a-pool")
    assert _error(excinfo)[0] == "InvalidParameterException"


def test_tags_follow_the_signed_region(emulator: EmulatorServer, idp: Any) -> None:
    west = _client(emulator, "cognito-idp", region="eu-west-1")
    pool = west.create_user_pool(PoolName=_name("pool"), UserPoolTags={"tenant": "eu"})["UserPool"]
    assert pool["Arn"].startswith("arn:aws:cognito-idp:eu-west-1:")
    assert west.list_tags_for_resource(ResourceArn=pool["Arn"])["Tags"] == {"tenant": "eu"}
    with pytest.raises(ClientError) as excinfo:
        idp.list_tags_for_resource(ResourceArn=pool["Arn"])
    assert _error(excinfo)[0] == "ResourceNotFoundException"


# --- identity pool roles ----------------------------------------------------------------------


def _identity_pool(identity: Any) -> str:
    pool_id: str = identity.create_identity_pool(
        IdentityPoolName="tenant_identities", AllowUnauthenticatedIdentities=False
    )["IdentityPoolId"]
    return pool_id


def test_identity_pool_roles_round_trip(identity: Any) -> None:
    pool_id = _identity_pool(identity)
    assert identity.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == {}

    provider = "cognito-idp.us-east-1.amazonaws.com/us-east-1_abc:client123"
    mappings = {
        provider: {
            "Type": "Rules",
            "AmbiguousRoleResolution": "Deny",
            "RulesConfiguration": {
                "Rules": [
                    {
                        "Claim": "custom:tier",
                        "MatchType": "Equals",
                        "Value": "gold",
                        "RoleARN": ROLE_ARN,
                    }
                ]
            },
        }
    }
    roles = {"authenticated": ROLE_ARN, "unauthenticated": UNAUTH_ROLE_ARN}
    identity.set_identity_pool_roles(IdentityPoolId=pool_id, Roles=roles, RoleMappings=mappings)
    got = identity.get_identity_pool_roles(IdentityPoolId=pool_id)
    assert got["IdentityPoolId"] == pool_id
    assert got["Roles"] == roles
    assert got["RoleMappings"] == mappings

    # SetIdentityPoolRoles replaces the whole set, role mappings included.
    identity.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": ROLE_ARN})
    got = identity.get_identity_pool_roles(IdentityPoolId=pool_id)
    assert got["Roles"] == {"authenticated": ROLE_ARN}
    assert "RoleMappings" not in got


@pytest.mark.parametrize(
    ("roles", "mappings"),
    [
        ({"authenticated": "arn:aws:s3:::bucket/role"}, None),
        ({"authenticated": "not-an-arn-at-all-really"}, None),
        ({"admin": ROLE_ARN}, None),
        ({"authenticated": ROLE_ARN}, {"provider": {"Type": "Token"}}),
        (
            {"authenticated": ROLE_ARN},
            {"provider": {"Type": "Rules", "AmbiguousRoleResolution": "Deny"}},
        ),
        (
            {"authenticated": ROLE_ARN},
            {
                "provider": {
                    "Type": "Rules",
                    "AmbiguousRoleResolution": "Deny",
                    "RulesConfiguration": {
                        "Rules": [
                            {
                                "Claim": "c",
                                "MatchType": "Equals",
                                "Value": "v",
                                "RoleARN": "arn:aws:iam::1:user/u",
                            }
                        ]
                    },
                }
            },
        ),
    ],
)
def test_invalid_identity_pool_roles_are_rejected(
    identity: Any, roles: dict[str, str], mappings: dict[str, Any] | None
) -> None:
    pool_id = _identity_pool(identity)
    kwargs: dict[str, Any] = {"IdentityPoolId": pool_id, "Roles": roles}
    if mappings is not None:
        kwargs["RoleMappings"] = mappings
    with pytest.raises(ClientError) as excinfo:
        identity.set_identity_pool_roles(**kwargs)
    assert _error(excinfo)[0] == "InvalidParameterException"
    assert identity.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == {}


def test_identity_pool_roles_of_unknown_pool_are_not_found(identity: Any) -> None:
    unknown = "us-east-1:00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as excinfo:
        identity.set_identity_pool_roles(IdentityPoolId=unknown, Roles={"authenticated": ROLE_ARN})
    assert _error(excinfo)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        identity.get_identity_pool_roles(IdentityPoolId=unknown)
    assert _error(excinfo)[0] == "ResourceNotFoundException"


def test_deleting_the_identity_pool_drops_its_roles(identity: Any) -> None:
    pool_id = _identity_pool(identity)
    identity.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": ROLE_ARN})
    identity.delete_identity_pool(IdentityPoolId=pool_id)
    with pytest.raises(ClientError) as excinfo:
        identity.get_identity_pool_roles(IdentityPoolId=pool_id)
    assert _error(excinfo)[0] == "ResourceNotFoundException"


# --- server lifecycle -------------------------------------------------------------------------


def test_reset_forgets_everything(emulator: EmulatorServer, idp: Any) -> None:
    pool_id = _user_pool(idp)["Id"]
    emulator.reset()
    assert not _pool_exists(idp, pool_id)


def test_a_second_server_serves_until_stopped() -> None:
    with EmulatorServer(port=0) as server:
        url = server.endpoint_url
        assert url.startswith("http://127.0.0.1:")
        client = _client(server, "cognito-idp")
        assert "UserPools" in client.list_user_pools(MaxResults=1)
    with pytest.raises(EndpointConnectionError):
        client.list_user_pools(MaxResults=1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1).close()


def test_latency_is_added_to_every_call() -> None:
    """--latency-ms: each call takes at least L (a lower bound a sleep guarantees, not a benchmark)."""
    import time

    with EmulatorServer(port=0, latency_ms=150) as slow:
        sts = boto3.client(
            "sts",
            endpoint_url=slow.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        started = time.perf_counter()
        for _ in range(3):
            assert sts.get_caller_identity()["Account"] == "123456789012"
        assert time.perf_counter() - started >= 3 * 0.150
