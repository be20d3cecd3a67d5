"""The emulator refuses message templates AWS refuses: CreateUserPool, UpdateUserPool and
SetUserPoolMfaConfig are checked against botocore's model (patterns and lengths of the
verification, invitation and SMS messages) and answer InvalidParameterException, as Cognito does.
Requests go straight to the emulator over HTTP with plain boto3 (no client-side checks: botocore's
own min-length check is off too), so only the emulator can refuse them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

SNS = {"SnsCallerArn": "arn:aws:iam::123456789012:role/sns-caller"}
GOOD = {
    "VerificationMessageTemplate": {
        "DefaultEmailOption": "CONFIRM_WITH_CODE",
        "EmailSubject": "Your Tom & Jerry code",
        "EmailMessage": "<p>Tom &amp; Jerry</p> code {####}",
        "SmsMessage": "Tom & Jerry code {####}",
    },
    "AdminCreateUserConfig": {
        "AllowAdminCreateUserOnly": True,
        "InviteMessageTemplate": {
            "EmailSubject": "Your account",
            "EmailMessage": "<b>Join</b> {username} {####}",
            "SMSMessage": "Join: {username} {####}",
        },
    },
    "SmsAuthenticationMessage": "Sign-in code {####}",
}

# (where the bad value goes, the value, AWS's member path in the message, the broken constraint)
BAD: list[tuple[tuple[str, ...], str, str, str]] = [
    (("VerificationMessageTemplate", "EmailMessage"), "a\u0000b {####}", "verificationMessageTemplate.emailMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "EmailMessage"), "Acme\u202e {####}", "verificationMessageTemplate.emailMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "EmailMessage"), "no code here", "verificationMessageTemplate.emailMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "EmailMessage"), "x" * 20001 + "{####}", "verificationMessageTemplate.emailMessage", "length less than or equal to 20000"),
    (("VerificationMessageTemplate", "EmailMessageByLink"), "Acme\u2028 {##go##}", "verificationMessageTemplate.emailMessageByLink", "regular expression pattern"),
    (("VerificationMessageTemplate", "EmailSubject"), "Acme\u0007", "verificationMessageTemplate.emailSubject", "regular expression pattern"),
    (("VerificationMessageTemplate", "EmailSubject"), "s" * 141, "verificationMessageTemplate.emailSubject", "length less than or equal to 140"),
    (("VerificationMessageTemplate", "EmailSubjectByLink"), "\u200b", "verificationMessageTemplate.emailSubjectByLink", "regular expression pattern"),
    (("VerificationMessageTemplate", "SmsMessage"), "Acme code", "verificationMessageTemplate.smsMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "SmsMessage"), "Acme\n{####}", "verificationMessageTemplate.smsMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "SmsMessage"), "Acme\u2028{####}", "verificationMessageTemplate.smsMessage", "regular expression pattern"),
    (("VerificationMessageTemplate", "SmsMessage"), "x" * 135 + "{####}", "verificationMessageTemplate.smsMessage", "length less than or equal to 140"),
    (("EmailVerificationMessage",), "a\u0000 {####}", "emailVerificationMessage", "regular expression pattern"),
    (("EmailVerificationSubject",), "Acme\u2029", "emailVerificationSubject", "regular expression pattern"),
    (("SmsVerificationMessage",), "{####}" + "x" * 135, "smsVerificationMessage", "length less than or equal to 140"),
    (("SmsVerificationMessage",), "{###}", "smsVerificationMessage", "length greater than or equal to 6"),
    (("SmsAuthenticationMessage",), "Acme\r{####}", "smsAuthenticationMessage", "regular expression pattern"),
    (("AdminCreateUserConfig", "InviteMessageTemplate", "EmailMessage"), "Join \u0007 {username} {####}", "adminCreateUserConfig.inviteMessageTemplate.emailMessage", "regular expression pattern"),
    (("AdminCreateUserConfig", "InviteMessageTemplate", "EmailSubject"), "Your \u202e account", "adminCreateUserConfig.inviteMessageTemplate.emailSubject", "regular expression pattern"),
    (("AdminCreateUserConfig", "InviteMessageTemplate", "SMSMessage"), "x" * 141, "adminCreateUserConfig.inviteMessageTemplate.sMSMessage", "length less than or equal to 140"),
]
IDS = [f"{'.'.join(where)}-{i}" for i, (where, *_rest) in enumerate(BAD)]


@pytest.fixture(scope="module")
def idp(emulator_endpoint: str) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=emulator_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # One attempt, and botocore's own (min-length) validation off: only the emulator judges.
        config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=False),
    )


def _with(where: tuple[str, ...], value: str) -> dict[str, Any]:
    params = copy.deepcopy(GOOD)
    target = params
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    return params


def _refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException", error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Message"])


def _pool_name() -> str:
    return f"msg-{uuid.uuid4().hex[:10]}"


def test_good_templates_are_stored_as_sent(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName=_pool_name(), **GOOD)["UserPool"]
    described = idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert described["VerificationMessageTemplate"]["EmailMessage"] == GOOD["VerificationMessageTemplate"]["EmailMessage"]  # type: ignore[index]
    assert described["SmsAuthenticationMessage"] == GOOD["SmsAuthenticationMessage"]
    idp.update_user_pool(UserPoolId=pool["Id"], **GOOD)


@pytest.mark.parametrize(("where", "value", "member", "constraint"), BAD, ids=IDS)
def test_create_user_pool_refuses_a_bad_template(idp: Any, where: tuple[str, ...], value: str, member: str, constraint: str) -> None:
    name = _pool_name()
    message = _refused(idp.create_user_pool, PoolName=name, **_with(where, value))
    assert message.startswith("1 validation error detected: ")
    assert f"at '{member}' failed to satisfy constraint: Member must" in message and constraint in message
    pools = idp.list_user_pools(MaxResults=60)["UserPools"]
    assert name not in {p["Name"] for p in pools}  # nothing was created


@pytest.mark.parametrize(("where", "value", "member", "constraint"), BAD, ids=IDS)
def test_update_user_pool_refuses_a_bad_template_and_keeps_the_old_one(
    idp: Any, where: tuple[str, ...], value: str, member: str, constraint: str
) -> None:
    pool_id = idp.create_user_pool(PoolName=_pool_name(), **GOOD)["UserPool"]["Id"]
    message = _refused(idp.update_user_pool, UserPoolId=pool_id, **_with(where, value))
    assert f"at '{member}'" in message and constraint in message
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["VerificationMessageTemplate"] == GOOD["VerificationMessageTemplate"]
    assert described["SmsAuthenticationMessage"] == GOOD["SmsAuthenticationMessage"]


def test_set_user_pool_mfa_config_refuses_a_bad_sms_message(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName=_pool_name(), SmsConfiguration=SNS)["UserPool"]["Id"]
    message = _refused(
        idp.set_user_pool_mfa_config,
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "Acme\u2028{####}", "SmsConfiguration": SNS},
    )
    assert "at 'smsMfaConfiguration.smsAuthenticationMessage'" in message
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "Tom & Jerry: {####}", "SmsConfiguration": SNS},
    )

