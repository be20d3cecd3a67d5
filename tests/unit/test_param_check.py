"""The request checker against botocore's real service models (no I/O)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel

from adapters.aws.param_check import HOOK, AwsParamViolation, ParamChecker, check_members, check_params, compile_java_pattern

SERVICES = ("cognito-idp", "cognito-identity", "iam", "sts")


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    session = botocore.session.get_session()
    return {service: session.get_service_model(service) for service in SERVICES}


def check(models: dict[str, Any], service: str, operation: str, **params: Any) -> None:
    check_params(params=params, model=models[service].operation_model(operation))


TRUST = '{"Version":"2012-10-17","Statement":[]}'


def test_good_create_role_passes(models: dict[str, Any]) -> None:
    check(
        models,
        "iam",
        "CreateRole",
        RoleName="tp-acme-auth",
        Path="/tenants/",
        AssumeRolePolicyDocument=TRUST,
        Description="Authenticated users of tenant acme",
        MaxSessionDuration=3600,
        Tags=[{"Key": "tenants:tenant-id", "Value": "acme"}],
    )


def test_role_name_with_a_space_is_refused(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation) as caught:
        check(models, "iam", "CreateRole", RoleName="a b", AssumeRolePolicyDocument=TRUST)
    assert caught.value.path == "RoleName"
    assert "IAM.CreateRole" in str(caught.value) and "pattern" in str(caught.value)


def test_role_name_of_65_characters_is_refused_and_64_passes(models: dict[str, Any]) -> None:
    check(models, "iam", "CreateRole", RoleName="r" * 64, AssumeRolePolicyDocument=TRUST)
    with pytest.raises(AwsParamViolation, match="more than the maximum 64"):
        check(models, "iam", "CreateRole", RoleName="r" * 65, AssumeRolePolicyDocument=TRUST)


def test_java_word_class_is_ascii_only(models: dict[str, Any]) -> None:
    # Java's \w has no accented letters: IAM refuses this name, Python's Unicode \w would not.
    with pytest.raises(AwsParamViolation):
        check(models, "iam", "CreateRole", RoleName="café", AssumeRolePolicyDocument=TRUST)


def test_session_duration_above_the_maximum_is_refused(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation, match="MaxSessionDuration"):
        check(models, "iam", "CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST, MaxSessionDuration=43201)


def test_invalid_enum_is_refused(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation) as caught:
        check(models, "cognito-idp", "CreateUserPool", PoolName="p", MfaConfiguration="SOMETIMES")
    assert caught.value.path == "MfaConfiguration"
    assert "'OPTIONAL'" in str(caught.value)


def test_nested_values_are_checked_with_their_path(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation) as caught:
        check(
            models,
            "cognito-idp",
            "CreateUserPoolClient",
            UserPoolId="us-east-1_abc",
            ClientName="c",
            TokenValidityUnits={"AccessToken": "weeks"},
        )
    assert caught.value.path == "TokenValidityUnits.AccessToken"


def test_list_items_and_map_entries_are_checked(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation, match=r"ExplicitAuthFlows\[1\]"):
        check(
            models,
            "cognito-idp",
            "CreateUserPoolClient",
            UserPoolId="us-east-1_abc",
            ClientName="c",
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_EVERYTHING"],
        )
    with pytest.raises(AwsParamViolation, match="UserPoolTags"):
        check(models, "cognito-idp", "CreateUserPool", PoolName="p", UserPoolTags={"k" * 129: "v"})


def test_unicode_property_classes_work(models: dict[str, Any]) -> None:
    # GroupName's pattern is [\p{L}\p{M}\p{S}\p{N}\p{P}]+: letters of any script, no spaces.
    check(models, "cognito-idp", "CreateGroup", UserPoolId="us-east-1_abc", GroupName="Équipe-管理")
    with pytest.raises(AwsParamViolation, match="GroupName"):
        check(models, "cognito-idp", "CreateGroup", UserPoolId="us-east-1_abc", GroupName="two words")


def test_sensitive_values_are_not_echoed(models: dict[str, Any]) -> None:
    secret = "hunter2 with spaces\u0000"
    with pytest.raises(AwsParamViolation) as caught:
        check(models, "cognito-idp", "AdminCreateUser", UserPoolId="us-east-1_abc", Username="u", TemporaryPassword=secret)
    message = str(caught.value)
    assert "TemporaryPassword" in message
    assert secret not in message and "hunter2" not in message
    assert "<sensitive value>" in message


def test_nested_sensitive_value_is_not_echoed(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation) as caught:
        check(
            models,
            "cognito-idp",
            "AdminCreateUser",
            UserPoolId="us-east-1_abc",
            Username="u",
            UserAttributes=[{"Name": "email", "Value": "x" * 3000}],
        )
    assert caught.value.path == "UserAttributes[0].Value"
    assert "xxx" not in str(caught.value)


def test_sensitive_is_inherited_from_an_enclosing_shape() -> None:
    # No shape in these four models is a sensitive container around a constrained member, so a
    # small synthetic model stands in for one.
    model = ServiceModel(
        {
            "metadata": {"protocol": "json", "serviceId": "Fake", "apiVersion": "2024-01-01", "endpointPrefix": "fake"},
            "operations": {"Put": {"name": "Put", "input": {"shape": "PutRequest"}}},
            "shapes": {
                "PutRequest": {"type": "structure", "members": {"Secret": {"shape": "Secret"}}},
                "Secret": {"type": "structure", "sensitive": True, "members": {"Pin": {"shape": "Pin"}}},
                "Pin": {"type": "string", "pattern": "[0-9]{4}"},
            },
        },
        service_name="fake",
    )
    with pytest.raises(AwsParamViolation) as caught:
        check_params(params={"Secret": {"Pin": "letmein"}}, model=model.operation_model("Put"))
    assert caught.value.path == "Secret.Pin"
    assert "letmein" not in str(caught.value)


def test_good_cognito_requests_pass(models: dict[str, Any]) -> None:
    check(
        models,
        "cognito-idp",
        "CreateUserPool",
        PoolName="tp-acme",
        DeletionProtection="ACTIVE",
        UsernameAttributes=["email"],
        MfaConfiguration="OFF",
        UserPoolTier="ESSENTIALS",
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        UserPoolTags={"tenants:tenant-id": "acme"},
    )
    check(models, "cognito-idp", "CreateUserPoolDomain", Domain="tp-acme", UserPoolId="us-east-1_abc")
    check(
        models,
        "cognito-identity",
        "SetIdentityPoolRoles",
        IdentityPoolId="us-east-1:0f2b3c4d-1111-2222-3333-444455556666",
        Roles={"authenticated": "arn:aws:iam::123456789012:role/tenants/tp-acme-auth"},
    )


def test_identity_pool_roles_keys_are_checked(models: dict[str, Any]) -> None:
    with pytest.raises(AwsParamViolation, match="Roles"):
        check(
            models,
            "cognito-identity",
            "SetIdentityPoolRoles",
            IdentityPoolId="us-east-1:0f2b3c4d-1111-2222-3333-444455556666",
            Roles={"admins": "arn:aws:iam::123456789012:role/x"},
        )


def test_every_pattern_in_the_models_compiles(models: dict[str, Any]) -> None:
    patterns: set[str] = set()
    for model in models.values():
        for shape_name in model.shape_names:
            pattern = model.shape_for(shape_name).metadata.get("pattern")
            if pattern:
                patterns.add(pattern)
    assert len(patterns) > 20
    for pattern in patterns:
        compile_java_pattern(pattern)


def test_checker_counts_the_calls_it_checked(models: dict[str, Any]) -> None:
    checker = ParamChecker()
    event, handler = checker.hook
    assert event == HOOK[0] == "before-parameter-build"
    handler(params={"RoleName": "ok"}, model=models["iam"].operation_model("GetRole"))
    with pytest.raises(AwsParamViolation):
        handler(params={"RoleName": "not ok"}, model=models["iam"].operation_model("GetRole"))
    assert checker.checked == 1
    assert checker.operations == ["GetRole"]


@pytest.mark.parametrize("terminator", ["\n", "\r", "\x85", "\u2028", "\u2029"], ids=["LF", "CR", "NEL", "LS", "PS"])
def test_java_dot_stops_at_every_line_terminator_unless_dotall(models: dict[str, Any], terminator: str) -> None:
    """SmsVerificationMessageType is `.*\\{####\\}.*`: Java's `.` matches no line terminator, so
    AWS refuses a newline (or U+2028 ...) before the code; SmsInviteMessageType is `(?s).*`."""
    with pytest.raises(AwsParamViolation) as caught:
        check(models, "cognito-idp", "CreateUserPool", PoolName="p", SmsVerificationMessage=f"Acme{terminator}{{####}}")
    assert caught.value.path == "SmsVerificationMessage"
    assert caught.value.constraint.startswith("Member must satisfy regular expression pattern: ")
    check(models, "cognito-idp", "CreateUserPool", PoolName="p", SmsVerificationMessage="Acme \x00 {####}")
    invite = {"InviteMessageTemplate": {"SMSMessage": f"Hi{terminator}{{username}} {{####}}"}}
    check(models, "cognito-idp", "CreateUserPool", PoolName="p", AdminCreateUserConfig=invite)


def test_check_members_checks_only_the_members_named(models: dict[str, Any]) -> None:
    model = models["cognito-idp"].operation_model("CreateUserPool")
    params = {"PoolName": "bad/name", "EmailVerificationSubject": "s" * 141}
    with pytest.raises(AwsParamViolation) as caught:
        check_members(model, params, ["EmailVerificationSubject"])
    assert caught.value.constraint == "Member must have length less than or equal to 140"
    check_members(model, params, ["SmsVerificationMessage"])  # PoolName breaks its pattern, but is not named
