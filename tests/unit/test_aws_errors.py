"""botocore failures -> domain errors, and the gateways' completeness against the ports (no I/O)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError

from adapters.aws.errors import translate, translated
from adapters.aws.gateways import CognitoIdentityPoolGateway, CognitoUserPoolGateway, IamRoleGateway, SecretsManagerGateway
from adapters.aws.param_check import AwsParamViolation
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound, QuotaExceeded
from domain.ports import IamGateway, IdentityPoolGateway, SecretStore, UserPoolGateway


def client_error(code: str, message: str = "boom", status: int = 400, operation: str = "CreateRole") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "NoSuchEntity", "UserNotFoundException"])
def test_not_found_codes(code: str) -> None:
    error = translate(client_error(code, status=404))
    assert isinstance(error, CloudNotFound) and error.code == code and not error.retryable


@pytest.mark.parametrize(
    "code", ["EntityAlreadyExists", "GroupExistsException", "UsernameExistsException", "ResourceExistsException"]
)
def test_already_exists_codes(code: str) -> None:
    error = translate(client_error(code, status=409))
    assert isinstance(error, CloudAlreadyExists) and error.code == code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 400),  # Cognito throttles with a 400
        ("InternalErrorException", 500),
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("ServiceFailure", 500),
        ("ConcurrentModificationException", 400),
        ("SomethingNew", 503),
        ("500", 500),  # botocore's code for a 5xx without a parsable body
    ],
)
def test_retryable_errors(code: str, status: int) -> None:
    error = translate(client_error(code, status=status))
    assert type(error) is CloudError and error.retryable and error.code == code


@pytest.mark.parametrize("code", ["LimitExceededException", "LimitExceeded", "ServiceQuotaExceededException"])
def test_quota_errors_are_quota_exceeded(code: str) -> None:
    error = translate(client_error(code, message="quota reached"))
    assert isinstance(error, QuotaExceeded) and not error.retryable
    assert (error.code, error.aws_code, error.message, error.operation) == ("quota_exceeded", code, "quota reached", "CreateRole")


def test_a_retried_call_says_how_many_times_it_was_sent() -> None:
    response: Any = {"Error": {"Code": "Throttling"}, "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 4}}
    error = translate(ClientError(response, "ListRoles"))
    assert error is not None and error.retryable and error.attempts == 5
    assert translate(client_error("Throttling")).attempts == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("code", ["AccessDeniedException", "InvalidParameterException"])
def test_permanent_errors(code: str) -> None:
    error = translate(client_error(code, message="quota reached"))
    assert type(error) is CloudError and not error.retryable
    assert (error.code, error.message, error.operation) == (code, "quota reached", "CreateRole")


def test_message_never_carries_an_access_key_id() -> None:
    error = translate(client_error("InvalidSignatureException", "Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1"))
    assert error is not None and "AKIAIOSFODNN7EXAMPLE" not in error.message


def test_connection_errors_are_retryable() -> None:
    for exc in (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ReadTimeoutError(endpoint_url="http://x")):
        error = translate(exc, "GetRole")
        assert error is not None and error.retryable and error.operation == "GetRole"


def test_programming_errors_pass_through() -> None:
    with pytest.raises(ParamValidationError):
        with translated("CreateRole"):
            raise ParamValidationError(report="Missing required parameter")
    with pytest.raises(AwsParamViolation):
        with translated("CreateRole"):
            raise AwsParamViolation("IAM.CreateRole", "RoleName", "= 'a b' does not match")


def test_translated_chains_the_original() -> None:
    original = client_error("NoSuchEntity")
    with pytest.raises(CloudNotFound) as caught:
        with translated("GetRole"):
            raise original
    assert caught.value.__cause__ is original


@pytest.mark.parametrize(
    ("port", "gateway"),
    [
        (UserPoolGateway, CognitoUserPoolGateway),
        (IdentityPoolGateway, CognitoIdentityPoolGateway),
        (IamGateway, IamRoleGateway),
        (SecretStore, SecretsManagerGateway),
    ],
)
def test_gateways_implement_every_port_method(port: type, gateway: type) -> None:
    # Subclassing a Protocol inherits its stub bodies: a forgotten method would silently return None.
    for name, stub in inspect.getmembers(port, inspect.isfunction):
        if name.startswith("_"):
            continue
        implementation = getattr(gateway, name)
        assert implementation is not stub, f"{gateway.__name__}.{name} is not implemented"
        assert inspect.signature(implementation) == inspect.signature(stub), f"{gateway.__name__}.{name} signature"
