"""Tier templates, the fields of issue 6: every cross-field rule Cognito enforces (and its API
model cannot express) is refused at load with a message naming the tier and the field; the
example template that uses every field loads; requests are built from the templates as AWS takes them.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from adapters.aws.cognito_requests import app_client_request, mfa_request, user_pool_request
from adapters.aws.param_check import check_params
from domain.errors import TemplateError
from domain.naming import ResourceNames
from domain.tiers import TENANT_ID_CUSTOM_ATTRIBUTE, parse_tiers, render_message, template_tags
from tests.unit.test_tiers import AUTH_POLICY, doc, minimal, template_error

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:f"
SES = "arn:aws:ses:us-east-1:123456789012:identity/example.com"
SNS_ROLE = "arn:aws:iam::123456789012:role/sns-caller"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
API = "https://api.example.com"
SERVER = {"identifier": API, "name": "API", "scopes": [{"name": "read", "description": "read"}]}
WEB = {"oauth_flows": ["code"], "oauth_scopes": ["openid"], "callback_urls": ["https://app.example.com/cb"]}
MACHINE = {"oauth_flows": ["client_credentials"], "oauth_scopes": [f"{API}/read"], "generate_secret": True}


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def error_of(**fields: Any) -> str:
    return template_error(doc(gold=minimal(**fields)))


def ok(**fields: Any) -> Any:
    return parse_tiers(doc(gold=minimal(**fields)))["gold"]


# -- the example template -------------------------------------------------------------------------


def test_the_example_template_loads_and_uses_the_new_fields() -> None:
    template = parse_tiers(example())["enterprise"]
    assert list(template.clients) == ["web", "machine", "mobile"] and template.primary_client == "web"
    assert template.clients["machine"].is_machine and not template.clients["machine"].trusted_by_identity_pool
    assert not template.clients["mobile"].trusted_by_identity_pool and template.clients["web"].trusted_by_identity_pool
    assert set(template.mfa_methods) == {"TOTP", "SMS", "EMAIL"}
    assert template.all_custom_attributes()[0] == TENANT_ID_CUSTOM_ATTRIBUTE
    assert set(template.roles) == {"admins", "editors"}


def test_every_example_request_passes_the_botocore_model_checks() -> None:
    """The requests built from the example template satisfy every pattern/min/max/enum of
    botocore's model (the same check the emulator tests run on the wire)."""
    template = parse_tiers(example())["enterprise"]
    model = botocore.session.get_session().get_service_model("cognito-idp")
    pool = user_pool_request(name="tenants-acme", template=template, tags={"a": "b"}, display_name="D" * 128, tenant_id="acme")
    check_params(pool, model.operation_model("CreateUserPool"))
    assert len(pool["SmsAuthenticationMessage"]) <= 140  # the long display name was shortened
    mfa = mfa_request(pool_id="us-east-1_abc123", template=template, display_name="D" * 128, tenant_id="acme")
    check_params(mfa, model.operation_model("SetUserPoolMfaConfig"))
    for name in template.clients:
        client = app_client_request(pool_id="us-east-1_abc123", name=f"tenants-acme-app-{name}", template=template, client=name)
        check_params(client, model.operation_model("CreateUserPoolClient"))
    # The check is real: a message without Cognito's code placeholder is refused.
    bad = {**pool, "VerificationMessageTemplate": {"SmsMessage": "no code"}}
    with pytest.raises(ValueError, match="SmsMessage"):
        check_params(bad, model.operation_model("CreateUserPool"))


def test_a_shipped_tier_without_any_new_field_keeps_its_old_requests() -> None:
    template = ok()
    params = user_pool_request(name="p", template=template, tags={}, display_name="Acme", tenant_id="acme")
    assert params["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]}
    assert params["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert params["EmailConfiguration"] == {"EmailSendingAccount": "COGNITO_DEFAULT"}
    assert "LambdaConfig" not in params and "DeviceConfiguration" not in params and "SmsConfiguration" not in params
    assert [a["Name"] for a in params["Schema"]] == ["tenant_id"]
    assert list(template.clients) == ["default"]


# -- messages and the display name ----------------------------------------------------------------


def test_messages_get_the_display_name_and_keep_cognitos_placeholders() -> None:
    template = ok(
        verification={"email_subject": "Welcome to {{display_name}}", "email_message": "{{display_name}} code: {####}"},
        invitation={"email_message": "{{ display_name }}: {username} / {####}"},
    )
    params = user_pool_request(name="p", template=template, tags={}, display_name="Acme Corp", tenant_id="acme")
    assert params["VerificationMessageTemplate"] == {
        "DefaultEmailOption": "CONFIRM_WITH_CODE",
        "EmailSubject": "Welcome to Acme Corp",
        "EmailMessage": "Acme Corp code: {####}",
    }
    assert params["AdminCreateUserConfig"]["InviteMessageTemplate"] == {"EmailMessage": "Acme Corp: {username} / {####}"}


def test_a_display_name_too_long_for_an_sms_is_shortened_to_fit() -> None:
    text = "Your {{display_name}} code is {####}"
    rendered = render_message(text, {"display_name": "A" * 128, "tenant_id": "acme"}, 140)
    assert len(rendered) == 140 and rendered.endswith("... code is {####}")
    assert render_message(text, {"display_name": "Acme", "tenant_id": "acme"}, 140) == "Your Acme code is {####}"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("verification", {"email_message": "no code here"}, "email_message: must contain {####}"),
        ("verification", {"email_method": "link", "email_message": "code {####}"}, "{##link text##}"),
        ("verification", {"sms_message": "Your code"}, "sms_message: must contain {####}"),
        ("verification", {"email_subject": "Hi {{company}}"}, "unknown placeholder {{company}}"),
        ("invitation", {"email_message": "Password {####}"}, "{username}"),
        ("invitation", {"sms_message": "{username} only"}, "{####}"),
        ("verification", {"sms_message": "x" * 120 + " {{display_name}} {####}"}, "140 characters"),
    ],
)
def test_bad_message_templates_are_refused(field: str, value: dict[str, Any], needle: str) -> None:
    message = error_of(**{field: value})
    assert "'gold'" in message and needle in message


def test_link_verification_needs_email_to_be_verified() -> None:
    message = error_of(verification={"email_method": "link"}, auto_verified_attributes=[])
    assert "verification.email_method" in message


# -- attributes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "needle"),
    [
        ([{"name": "tenant_id"}], "added to every pool"),
        ([{"name": "a"}, {"name": "a"}], "names must be unique"),
        ([{"name": "x" * 21}], "custom_attributes.0.name"),
        ([{"name": "n", "type": "Number", "min_length": 1}], "only for type String"),
        ([{"name": "s", "min_value": 1}], "only for type Number"),
        ([{"name": "s", "min_length": 9, "max_length": 3}], "must not exceed max_length"),
        ([{"name": "n", "type": "Number", "min_value": 9, "max_value": 3}], "must not exceed max_value"),
        ([{"name": "b", "type": "Bool"}], "custom_attributes.0.type"),
    ],
)
def test_bad_custom_attributes_are_refused(attributes: list[dict[str, Any]], needle: str) -> None:
    assert needle in error_of(custom_attributes=attributes)


def test_required_attributes_are_standard_ones() -> None:
    assert "required_attributes" in error_of(required_attributes=["custom:tenant_id"])
    assert "values must be unique" in error_of(required_attributes=["email", "email"])


# -- security: MFA, SMS, email sender, recovery ------------------------------------------------------


def test_sms_mfa_needs_an_sms_configuration() -> None:
    assert "sms: SMS MFA needs" in error_of(mfa="ON", mfa_methods=["SMS"])
    assert ok(mfa="ON", mfa_methods=["SMS"], sms={"sns_caller_arn": SNS_ROLE}).sms is not None


def test_email_mfa_needs_a_paid_feature_plan_and_an_ses_sender() -> None:
    sender = {"ses_source_arn": SES, "from_address": "no-reply@example.com"}
    assert "needs the ESSENTIALS or PLUS" in error_of(feature_plan="LITE", mfa="ON", mfa_methods=["EMAIL"], email_sender=sender)
    assert "email_sender: EMAIL MFA needs" in error_of(mfa="ON", mfa_methods=["EMAIL"])
    template = ok(mfa="OPTIONAL", mfa_methods=["EMAIL"], email_sender=sender)
    assert mfa_request(pool_id="p", template=template, display_name="d", tenant_id="t")["EmailMfaConfiguration"] == {}


def test_phone_verification_and_phone_recovery_need_sms() -> None:
    assert "verifying phone numbers" in error_of(auto_verified_attributes=["phone_number"])
    assert "account recovery by phone" in error_of(account_recovery=["verified_phone_number"])


@pytest.mark.parametrize(
    ("recovery", "needle"),
    [
        (["admin_only", "verified_email"], "admin_only cannot be combined"),
        (["verified_email", "verified_email"], "values must be unique"),
        ([], "account_recovery"),
        (["verified_email", "admin_only", "verified_phone_number"], "account_recovery"),
    ],
)
def test_bad_account_recovery(recovery: list[str], needle: str) -> None:
    assert needle in error_of(account_recovery=recovery, sms={"sns_caller_arn": SNS_ROLE})


@pytest.mark.parametrize(
    ("sender", "needle"),
    [
        ({"ses_source_arn": "arn:aws:sns:us-east-1:123456789012:topic"}, "SES identity ARN"),
        ({"ses_source_arn": SES}, "from_address: needed when ses_source_arn is a domain identity"),
        ({"ses_source_arn": SES, "from_address": "me@other.example"}, "is not 'example.com'"),
        ({"ses_source_arn": SES.replace("example.com", "me@example.com"), "from_address": "you@example.com"}, "SES sends only from"),
        ({"ses_source_arn": SES, "from_address": "Name <no-reply@example.com>", "reply_to": "not-an-address"}, "reply_to"),
        ({"ses_source_arn": SES, "from_address": "a@example.com", "configuration_set": "bad set!"}, "configuration_set"),
    ],
)
def test_bad_email_senders(sender: dict[str, Any], needle: str) -> None:
    assert needle in error_of(email_sender=sender)


def test_sms_caller_must_be_a_role_and_the_mfa_message_needs_sms_mfa() -> None:
    assert "IAM role ARN" in error_of(sms={"sns_caller_arn": "arn:aws:iam::123456789012:user/bob"})
    assert "only used with SMS MFA" in error_of(sms={"sns_caller_arn": SNS_ROLE, "mfa_message": "code {####}"})


def test_device_remembering_maps_to_device_configuration() -> None:
    always = ok(device_remembering="always")
    params = user_pool_request(name="p", template=always, tags={}, display_name="d", tenant_id="t")
    assert params["DeviceConfiguration"] == {"ChallengeRequiredOnNewDevice": False, "DeviceOnlyRememberedOnUserPrompt": False}
    assert "device_remembering" in error_of(device_remembering="sometimes")


# -- Lambda triggers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("triggers", "needle"),
    [
        ({"pre_sign_up": "arn:aws:lambda:us-east-1:123:function:f"}, "pre_sign_up: must be a Lambda function ARN"),
        ({"post_confirmation": "my-function"}, "post_confirmation: must be a Lambda function ARN"),
        ({"custom_email_sender": LAMBDA}, "kms_key_id: custom_email_sender and custom_sms_sender need"),
        ({"kms_key_id": KMS}, "kms_key_id: only used with"),
        ({"custom_sms_sender": LAMBDA, "kms_key_id": "alias/mine"}, "KMS key ARN"),
        ({"pre_token_generation_version": "V2_0"}, "set pre_token_generation too"),
        ({"define_auth_challenge": LAMBDA}, "all three"),
        ({"user_migration": LAMBDA, "unknown_trigger": LAMBDA}, "unknown_trigger"),
    ],
)
def test_bad_lambda_triggers(triggers: dict[str, str], needle: str) -> None:
    message = error_of(lambda_triggers=triggers)
    assert "'gold'" in message and needle in message


def test_token_generation_v2_and_v3_need_a_paid_plan() -> None:
    triggers = {"pre_token_generation": LAMBDA, "pre_token_generation_version": "V3_0"}
    assert "lambda_triggers.pre_token_generation_version" in error_of(feature_plan="LITE", lambda_triggers=triggers)
    config = user_pool_request(
        name="p", template=ok(lambda_triggers=triggers), tags={}, display_name="d", tenant_id="t"
    )["LambdaConfig"]
    assert config == {"PreTokenGenerationConfig": {"LambdaVersion": "V3_0", "LambdaArn": LAMBDA}}


# -- app clients and resource servers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "needle"),
    [
        ({**MACHINE, "oauth_flows": ["client_credentials", "code"]}, "cannot be combined"),
        ({**MACHINE, "generate_secret": False}, "needs a client secret"),
        ({**MACHINE, "oauth_scopes": ["openid", f"{API}/read"]}, "only custom scopes"),
        ({**MACHINE, "identity_pool": True}, "has no users"),
        ({**WEB, "oauth_scopes": []}, "need at least one scope"),
        ({"oauth_scopes": ["openid"]}, "only with oauth_flows"),
        ({**WEB, "oauth_scopes": ["email"]}, "need openid"),
        ({**WEB, "callback_urls": []}, "need at least one callback URL"),
        ({**WEB, "callback_urls": ["http://app.example.com/cb"]}, "https://"),
        ({**WEB, "callback_urls": ["https://app.example.com/cb#frag"]}, "#fragment"),
        ({**WEB, "callback_urls": ["HTTP://app.example.com/cb"]}, "https://"),
        ({**WEB, "callback_urls": ["javascript://alert(1)"]}, "https://"),
        ({**WEB, "callback_urls": ["https://app.example.com/cb", "https://app.example.com/cb"]}, "must be unique"),
        ({"logout_urls": ["https://app.example.com/out"]}, "only used by the code and implicit flows"),
        ({**WEB, "default_redirect_uri": "https://elsewhere.example.com"}, "must be one of callback_urls"),
        ({**WEB, "oauth_scopes": [f"{API}/write"]}, "is not a scope of the tier's resource_servers"),
        ({"explicit_auth_flows": ["ALLOW_USER_SRP_AUTH"]}, "ALLOW_REFRESH_TOKEN_AUTH"),
    ],
)
def test_bad_app_clients_are_refused(client: dict[str, Any], needle: str) -> None:
    message = error_of(app_clients={"web": client}, resource_servers=[SERVER], hosted_ui_domain=True)
    assert "'gold'" in message and "app_clients" in message and needle in message


def test_callback_urls_may_be_https_localhost_or_an_apps_own_scheme() -> None:
    urls = ["https://app.example.com/cb", "http://localhost:3000/cb", "com.example.app://callback"]
    template = ok(app_clients={"web": {**WEB, "callback_urls": urls}}, hosted_ui_domain=True)
    assert template.clients["web"].callback_urls == tuple(urls)


def test_oauth_clients_need_the_hosted_ui_domain() -> None:
    assert "hosted_ui_domain = true" in error_of(app_clients={"web": WEB})


def test_app_client_and_app_clients_together_are_refused() -> None:
    assert "not both" in error_of(app_client={}, app_clients={"web": {}})


@pytest.mark.parametrize("name", ["Web", "1web", "a" * 21, "web_client"])
def test_client_names_are_short_lower_case_words(name: str) -> None:
    assert "client name" in error_of(app_clients={name: {}})


def test_resource_servers_need_unique_identifiers_and_scopes() -> None:
    assert "identifiers must be unique" in error_of(resource_servers=[SERVER, SERVER])
    twice = {**SERVER, "scopes": [SERVER["scopes"][0], SERVER["scopes"][0]]}
    assert "scope names must be unique" in error_of(resource_servers=[twice])
    assert "resource_servers.0.scopes.0.name" in error_of(resource_servers=[{**SERVER, "scopes": [{"name": "a/b", "description": "d"}]}])


def test_a_tenants_urls_replace_the_template_defaults_and_its_providers_are_allowed() -> None:
    template = ok(app_clients={"web": WEB, "machine": MACHINE}, resource_servers=[SERVER], hosted_ui_domain=True)
    default = app_client_request(pool_id="p", name="n", template=template)
    assert default["CallbackURLs"] == ["https://app.example.com/cb"] and default["SupportedIdentityProviders"] == ["COGNITO"]
    own = app_client_request(
        pool_id="p",
        name="n",
        template=template,
        client="web",
        callback_urls=["https://acme.example/cb"],
        logout_urls=["https://acme.example/out"],
        identity_providers=["AcmeOIDC"],
    )
    assert own["CallbackURLs"] == ["https://acme.example/cb"] and own["LogoutURLs"] == ["https://acme.example/out"]
    assert own["SupportedIdentityProviders"] == ["COGNITO", "AcmeOIDC"]
    machine = app_client_request(pool_id="p", name="n", template=template, client="machine", callback_urls=["https://x.example"])
    assert "CallbackURLs" not in machine and machine["AllowedOAuthFlows"] == ["client_credentials"]
    assert machine["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]


# -- identity pool, roles, tags --------------------------------------------------------------------------


ROLE = {"policy": copy.deepcopy(AUTH_POLICY)}
RULES = {"type": "Rules", "rules": [{"claim": "cognito:groups", "match_type": "Contains", "value": "editors", "role": "editors"}]}


def test_rules_mapping_to_an_extra_role_loads() -> None:
    template = ok(roles={"editors": ROLE}, identity_pool={"role_mapping": RULES})
    assert template.identity_pool.role_mapping is not None and "editors" in template.roles


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"identity_pool": {"role_mapping": RULES}}, "is neither 'authenticated' nor one of the tier's roles"),
        ({"roles": {"editors": ROLE}}, "used by no role_mapping rule and no group"),
        ({"roles": {"auth": ROLE}, "groups": [{"name": "g", "role": "auth"}]}, "not auth or unauth"),
        ({"roles": {"Editors": ROLE}}, "role name"),
        ({"groups": [{"name": "g", "role": "nobody"}]}, "not one of the tier's roles"),
        ({"identity_pool": {"role_mapping": {"type": "Rules"}}}, "needs at least one rule"),
        ({"identity_pool": {"role_mapping": {**RULES, "type": "Token"}}}, "a Token mapping takes"),
        ({"identity_pool": {"role_mapping": {**RULES, "ambiguous_role_resolution": "Guess"}}}, "ambiguous_role_resolution"),
        ({"identity_pool": {"login_providers": {"login.example.com": "x"}}}, "is not one of"),
        ({"app_client": {"identity_pool": False}}, "must trust at least one app client"),
        ({"roles": {"editors": {"policy": []}}, "groups": [{"name": "g", "role": "editors"}]}, "roles.editors.policy"),
        ({"roles": {"editors": {"policy": [{**AUTH_POLICY[0], "Resource": ["*"]}]}}, "groups": [{"name": "g", "role": "editors"}]}, "must be an ARN"),
    ],
)
def test_bad_identity_pool_settings_and_roles(fields: dict[str, Any], needle: str) -> None:
    message = error_of(**fields)
    assert "'gold'" in message and needle in message


@pytest.mark.parametrize(
    ("tags", "needle"),
    [
        ({"tenants:tenant-id": "other"}, "is reserved"),
        ({"TENANTS:managed-by": "me"}, "is reserved"),
        ({"aws:cloudformation:stack-name": "x"}, "is reserved"),
        ({"bad{key}": "x"}, "keys are 1-128"),
        ({f"k{i}": "v" for i in range(49)}, "at most 48"),
    ],
)
def test_template_tags_can_never_touch_the_ownership_tags(tags: dict[str, str], needle: str) -> None:
    assert needle in error_of(tags=tags)


def test_ownership_tags_win_over_template_and_tenant_tags() -> None:
    template = ok(tags={"team": "identity"})
    merged = template_tags(template, {"tenants:tenant-id": "acme"}, {"team": "acme-team", "tenants:tenant-id": "evil"})
    assert merged == {"team": "acme-team", "tenants:tenant-id": "acme"}


# -- names -------------------------------------------------------------------------------------------------


def test_extra_role_names_fit_iam_even_for_the_longest_tenant_ids() -> None:
    short = ResourceNames("tenants", "acme")
    assert short.extra_role("editors") == "tenants-acme-editors"
    longest = ResourceNames("p" * 16, "t" + "x" * 39)
    name = longest.extra_role("administrators12")
    assert len(name) <= 64 and name.endswith("-administrators12")
    assert longest.extra_role("a") != ResourceNames("p" * 16, "t" + "y" * 39).extra_role("a")


def test_clients_and_secrets_are_named_per_client_and_the_primary_keeps_the_old_names() -> None:
    names = ResourceNames("tenants", "acme")
    assert names.named_app_client("web", primary=True) == names.app_client == "tenants-acme-app"
    assert names.named_app_client("machine", primary=False) == "tenants-acme-app-machine"
    assert names.named_client_secret("web", primary=True) == names.client_secret
    assert names.named_client_secret("machine", primary=False) == "tenants/acme/app-client/machine/secret"


def test_a_bad_example_edit_names_the_tier_and_field() -> None:
    data = example()
    data["tiers"]["enterprise"]["app_clients"]["machine"]["generate_secret"] = False
    with pytest.raises(TemplateError) as caught:
        parse_tiers(data)
    assert "tier 'enterprise', field 'app_clients.machine'" in caught.value.message
