"""Cognito requests built from a tier template: CreateUserPool, SetUserPoolMfaConfig,
CreateUserPoolClient and CreateResourceServer.

Pure functions from the template (plus the per-tenant values: name, tags, display name, URLs,
identity providers) to the request parameters, so every field's mapping is in one place and the
botocore-model hook (param_check) sees exactly what AWS would get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.tiers import LAMBDA_TRIGGERS, AppClient, CustomAttribute, MessageMedium, ResourceServer, TierTemplate, render_message

_RECOVERY_PRIORITY_START = 1


# Cognito's length limits (botocore model): subjects and SMS 140, email bodies 20,000.
_LIMITS = {
    "EmailSubject": 140,
    "EmailSubjectByLink": 140,
    "EmailMessage": 20000,
    "EmailMessageByLink": 20000,
    "SmsMessage": 140,
    "SMSMessage": 140,
    "SmsAuthenticationMessage": 140,
}


# Cognito sends email messages as HTML (VerificationMessageTemplate.EmailMessage and
# EmailMessageByLink, InviteMessageTemplate.EmailMessage): the display name is HTML-escaped there.
# Subjects are plain text within the email patterns; SMS take the name as it is.
_MEDIUM: dict[str, MessageMedium] = {
    "EmailSubject": "email",
    "EmailSubjectByLink": "email",
    "EmailMessage": "html",
    "EmailMessageByLink": "html",
    "SmsMessage": "text",
    "SMSMessage": "text",
    "SmsAuthenticationMessage": "text",
}


def _render(key: str, text: str, values: dict[str, str]) -> str:
    return render_message(text, values, _LIMITS[key], medium=_MEDIUM[key])


def _schema_attribute(attribute: CustomAttribute) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "Name": attribute.name,
        "AttributeDataType": attribute.type,
        "Mutable": attribute.mutable,
        "Required": False,
        "DeveloperOnlyAttribute": False,
    }
    if attribute.type == "String":
        limits = {"MinLength": attribute.min_length, "MaxLength": attribute.max_length}
        schema["StringAttributeConstraints"] = {k: str(v) for k, v in limits.items() if v is not None}
    if attribute.type == "Number":
        limits = {"MinValue": attribute.min_value, "MaxValue": attribute.max_value}
        schema["NumberAttributeConstraints"] = {k: str(v) for k, v in limits.items() if v is not None}
    return schema


def _lambda_config(template: TierTemplate) -> dict[str, Any]:
    triggers = template.lambda_triggers
    config: dict[str, Any] = {
        key: getattr(triggers, field) for field, key in LAMBDA_TRIGGERS.items() if getattr(triggers, field) is not None
    }
    if triggers.pre_token_generation is not None:
        config["PreTokenGenerationConfig"] = {
            "LambdaVersion": triggers.pre_token_generation_version or "V1_0",
            "LambdaArn": triggers.pre_token_generation,
        }
    if triggers.custom_email_sender is not None:
        config["CustomEmailSender"] = {"LambdaVersion": "V1_0", "LambdaArn": triggers.custom_email_sender}
    if triggers.custom_sms_sender is not None:
        config["CustomSMSSender"] = {"LambdaVersion": "V1_0", "LambdaArn": triggers.custom_sms_sender}
    if triggers.kms_key_id is not None:
        config["KMSKeyID"] = triggers.kms_key_id
    return config


def user_pool_request(
    *, name: str, template: TierTemplate, tags: dict[str, str], display_name: str, tenant_id: str
) -> dict[str, Any]:
    """CreateUserPool. MFA stays OFF here: Cognito refuses ON/OPTIONAL at creation unless SMS is
    configured, so SetUserPoolMfaConfig (``mfa_request``) switches it on afterwards."""
    values = {"display_name": display_name, "tenant_id": tenant_id}
    password = template.password_policy
    params: dict[str, Any] = {
        "PoolName": name,
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": password.minimum_length,
                "RequireUppercase": password.require_uppercase,
                "RequireLowercase": password.require_lowercase,
                "RequireNumbers": password.require_numbers,
                "RequireSymbols": password.require_symbols,
                "TemporaryPasswordValidityDays": password.temporary_password_validity_days,
            }
        },
        "DeletionProtection": "ACTIVE" if template.deletion_protection else "INACTIVE",
        "UsernameConfiguration": {"CaseSensitive": template.case_sensitive_usernames},
        "MfaConfiguration": "OFF",
        "UserPoolTier": template.feature_plan,
        "AccountRecoverySetting": {
            "RecoveryMechanisms": [
                {"Priority": priority, "Name": mechanism}
                for priority, mechanism in enumerate(template.account_recovery, start=_RECOVERY_PRIORITY_START)
            ]
        },
        "Schema": [
            *(
                # Cognito's standard attributes are Strings, but for updated_at (a Number).
                {"Name": attribute, "AttributeDataType": "Number" if attribute == "updated_at" else "String", "Required": True, "Mutable": True}
                for attribute in template.required_attributes
            ),
            *(_schema_attribute(attribute) for attribute in template.all_custom_attributes()),
        ],
        "UserPoolTags": dict(tags),
    }
    if template.username_attributes:
        params["UsernameAttributes"] = list(template.username_attributes)
    if template.alias_attributes:
        params["AliasAttributes"] = list(template.alias_attributes)
    if template.auto_verified_attributes:
        params["AutoVerifiedAttributes"] = list(template.auto_verified_attributes)

    invite = template.invitation
    admin_create: dict[str, Any] = {"AllowAdminCreateUserOnly": not template.allow_self_sign_up}
    invite_template = {
        key: _render(key, text, values)
        for key, text in (("EmailSubject", invite.email_subject), ("EmailMessage", invite.email_message), ("SMSMessage", invite.sms_message))
        if text is not None
    }
    if invite_template:
        admin_create["InviteMessageTemplate"] = invite_template
    params["AdminCreateUserConfig"] = admin_create

    verification = template.verification
    link = verification.email_method == "link"
    message: dict[str, Any] = {"DefaultEmailOption": "CONFIRM_WITH_LINK" if link else "CONFIRM_WITH_CODE"}
    subject_key, message_key = ("EmailSubjectByLink", "EmailMessageByLink") if link else ("EmailSubject", "EmailMessage")
    for key, text in ((subject_key, verification.email_subject), (message_key, verification.email_message), ("SmsMessage", verification.sms_message)):
        if text is not None:
            message[key] = _render(key, text, values)
    params["VerificationMessageTemplate"] = message

    if template.device_remembering != "off":
        params["DeviceConfiguration"] = {
            # A device not yet remembered must pass MFA: only meaningful when MFA is on.
            "ChallengeRequiredOnNewDevice": template.mfa != "OFF",
            "DeviceOnlyRememberedOnUserPrompt": template.device_remembering == "user_opt_in",
        }
    sender = template.email_sender
    if sender is not None:
        email: dict[str, Any] = {"EmailSendingAccount": "DEVELOPER", "SourceArn": sender.ses_source_arn}
        if sender.from_address:
            email["From"] = sender.from_address
        if sender.reply_to:
            email["ReplyToEmailAddress"] = sender.reply_to
        if sender.configuration_set:
            email["ConfigurationSet"] = sender.configuration_set
        params["EmailConfiguration"] = email
    else:
        params["EmailConfiguration"] = {"EmailSendingAccount": "COGNITO_DEFAULT"}
    if template.sms is not None:
        params["SmsConfiguration"] = sms_configuration(template)
        if template.sms.mfa_message is not None:
            params["SmsAuthenticationMessage"] = _render("SmsAuthenticationMessage", template.sms.mfa_message, values)
    lambda_config = _lambda_config(template)
    if lambda_config:
        params["LambdaConfig"] = lambda_config
    return params


def sms_configuration(template: TierTemplate) -> dict[str, Any]:
    assert template.sms is not None
    sms: dict[str, Any] = {"SnsCallerArn": template.sms.sns_caller_arn}
    if template.sms.external_id is not None:
        sms["ExternalId"] = template.sms.external_id
    if template.sms.sns_region is not None:
        sms["SnsRegion"] = template.sms.sns_region
    return sms


def mfa_request(*, pool_id: str, template: TierTemplate, display_name: str, tenant_id: str) -> dict[str, Any]:
    """SetUserPoolMfaConfig: declarative, so running it again on an adopted pool is harmless."""
    methods = template.mfa_methods
    params: dict[str, Any] = {
        "UserPoolId": pool_id,
        "MfaConfiguration": template.mfa,
        "SoftwareTokenMfaConfiguration": {"Enabled": "TOTP" in methods},
    }
    if "SMS" in methods:
        sms: dict[str, Any] = {"SmsConfiguration": sms_configuration(template)}
        if template.sms is not None and template.sms.mfa_message is not None:
            sms["SmsAuthenticationMessage"] = _render(
                "SmsAuthenticationMessage", template.sms.mfa_message, {"display_name": display_name, "tenant_id": tenant_id}
            )
        params["SmsMfaConfiguration"] = sms
    if "EMAIL" in methods:
        params["EmailMfaConfiguration"] = {}
    return params


def app_client_request(
    *,
    pool_id: str,
    name: str,
    template: TierTemplate,
    client: str | None = None,
    callback_urls: Sequence[str] | None = None,
    logout_urls: Sequence[str] | None = None,
    identity_providers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """CreateUserPoolClient for the template's client ``client`` (default: the primary one).

    ``callback_urls`` / ``logout_urls``, when given and non-empty, replace the template's
    defaults (a tenant's own URLs); ``identity_providers`` are the tenant's provider names,
    allowed next to COGNITO. Both only matter to clients with the code or implicit flow.
    """
    key = client or template.primary_client
    app: AppClient = template.clients[key]
    tokens = template.client_tokens(key)
    params: dict[str, Any] = {
        "UserPoolId": pool_id,
        "ClientName": name,
        "GenerateSecret": app.generate_secret,
        "ExplicitAuthFlows": list(app.explicit_auth_flows),
        "AccessTokenValidity": tokens.access_token_minutes,
        "IdTokenValidity": tokens.id_token_minutes,
        "RefreshTokenValidity": tokens.refresh_token_days,
        "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
        "EnableTokenRevocation": app.enable_token_revocation,
        "PreventUserExistenceErrors": "ENABLED" if app.prevent_user_existence_errors else "LEGACY",
        "SupportedIdentityProviders": ["COGNITO", *(identity_providers or ())],
    }
    if app.oauth_flows:
        params["AllowedOAuthFlowsUserPoolClient"] = True
        params["AllowedOAuthFlows"] = list(app.oauth_flows)
        params["AllowedOAuthScopes"] = list(app.oauth_scopes)
    if not app.is_machine and app.oauth_flows:
        callbacks = list(callback_urls or app.callback_urls)
        logouts = list(logout_urls or app.logout_urls)
        params["CallbackURLs"] = callbacks
        if logouts:
            params["LogoutURLs"] = logouts
        if app.default_redirect_uri is not None and app.default_redirect_uri in callbacks:
            params["DefaultRedirectURI"] = app.default_redirect_uri
    if app.is_machine:
        # A machine client signs no users in: only COGNITO makes sense for it.
        params["SupportedIdentityProviders"] = ["COGNITO"]
    return params


def resource_server_request(*, pool_id: str, server: ResourceServer) -> dict[str, Any]:
    params: dict[str, Any] = {"UserPoolId": pool_id, "Identifier": server.identifier, "Name": server.name}
    if server.scopes:
        params["Scopes"] = [{"ScopeName": scope.name, "ScopeDescription": scope.description} for scope in server.scopes]
    return params
