"""Tier templates: what each tier provisions, validated once at start-up.

A template is data (loaded by ``service/`` from ``tiers.toml``); this module only validates it
and answers questions about it, so a bad file stops start-up with a message naming the tier and
the field. Role-policy statements use ``{{placeholder}}`` for per-tenant values so that IAM's own
policy variables (``${cognito-identity.amazonaws.com:sub}``) pass through untouched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from domain.errors import InvalidInput, TemplateError
from domain.naming import (
    APP_CLIENT_NAME_PATTERN,
    DISPLAY_NAME_MAX_LENGTH,
    EXTRA_ROLE_NAME_PATTERN,
    GROUP_NAME_MAX_LENGTH,
    GROUP_NAME_PATTERN,
    MAX_URLS,
    RESERVED_ROLE_NAMES,
    SCOPE_PATTERN,
    TENANT_ID_MAX_LENGTH,
    TIER_NAME_PATTERN,
    check_tags,
    is_allowed_url,
    is_valid_scope,
)

REQUIRED_AUTH_FLOWS: tuple[AuthFlow, ...] = ("ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
AuthFlow = Literal[
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
]
PLACEHOLDERS = frozenset(
    {"tenant_id", "partition", "region", "account_id", "user_pool_id", "user_pool_arn", "identity_pool_id"}
)
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# Placeholders whose values belong to one tenant: an Allow statement must name one of them in
# every Resource, or in a Condition that scopes it (dynamodb:LeadingKeys = "{{tenant_id}}#*").
TENANT_PLACEHOLDERS = frozenset({"tenant_id", "user_pool_id", "user_pool_arn", "identity_pool_id"})
PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})
# Characters no tenant or pool id contains. One of them must come between a tenant placeholder
# and any wildcard after it: "data/{{tenant_id}}*" or "data/{{tenant_id}}-*" would let tenant
# "acme" into "data/acme-corp/...", while "data/{{tenant_id}}/*" and "{{tenant_id}}-data/*" cannot.
_DELIMITERS = frozenset("/#.,=@+|")
_WILDCARDS = ("*", "?", "${")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PasswordPolicy(_Strict):
    minimum_length: int = Field(8, ge=6, le=99)
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = False
    temporary_password_validity_days: int = Field(7, ge=0, le=365)


class TokenValidity(_Strict):
    # Cognito's limits: access and ID tokens 5 minutes to 1 day; refresh tokens 1 hour to 10 years.
    access_token_minutes: int = Field(60, ge=5, le=1440)
    id_token_minutes: int = Field(60, ge=5, le=1440)
    refresh_token_days: int = Field(30, ge=1, le=3650)


OAuthFlow = Literal["code", "implicit", "client_credentials"]


def _check_urls(urls: tuple[str, ...], field: str) -> None:
    for url in urls:
        if not is_allowed_url(url, app_schemes=True):
            raise ValueError(
                f"{field}: {url!r} is not allowed; Cognito takes https:// URLs (http:// only for localhost) "
                "or an app's own scheme (myapp://...), without a #fragment, up to 1024 characters"
            )
    if len(set(urls)) != len(urls):
        raise ValueError(f"{field}: URLs must be unique")


class AppClient(_Strict):
    # oauth_flows comes first: the explicit_auth_flows check reads it.
    oauth_flows: tuple[OAuthFlow, ...] = ()
    explicit_auth_flows: tuple[AuthFlow, ...] = REQUIRED_AUTH_FLOWS
    generate_secret: bool = False
    enable_token_revocation: bool = True
    prevent_user_existence_errors: bool = True
    oauth_scopes: tuple[str, ...] = Field((), max_length=50)
    # Template defaults; a tenant's own callback/logout URLs (when set) replace them.
    callback_urls: tuple[str, ...] = Field((), max_length=MAX_URLS)
    logout_urls: tuple[str, ...] = Field((), max_length=MAX_URLS)
    default_redirect_uri: str | None = None
    # Overrides the tier's [tokens] for this client.
    tokens: TokenValidity | None = None
    # Whether the identity pool trusts this client's ID tokens; default: every client without
    # the client_credentials flow (a machine client has no users, hence no identities).
    identity_pool: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _machine_default_flows(cls, data: Any) -> Any:
        if isinstance(data, dict) and "client_credentials" in (data.get("oauth_flows") or ()) and "explicit_auth_flows" not in data:
            return {**data, "explicit_auth_flows": ("ALLOW_REFRESH_TOKEN_AUTH",)}
        return data

    @field_validator("explicit_auth_flows")
    @classmethod
    def _srp_and_refresh_always(cls, flows: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if len(set(flows)) != len(flows):
            raise ValueError("auth flows must be unique")
        if "client_credentials" in (info.data.get("oauth_flows") or ()):
            return flows
        missing = [flow for flow in REQUIRED_AUTH_FLOWS if flow not in flows]
        if missing:
            raise ValueError(f"every app client must allow {', '.join(REQUIRED_AUTH_FLOWS)}; missing {', '.join(missing)}")
        return flows

    @model_validator(mode="after")
    def _oauth_rules(self) -> AppClient:
        """Cognito's rules for OAuth clients, which its API model cannot express."""
        flows, scopes = set(self.oauth_flows), set(self.oauth_scopes)
        if len(flows) != len(self.oauth_flows):
            raise ValueError("oauth_flows: flows must be unique")
        if len(scopes) != len(self.oauth_scopes):
            raise ValueError("oauth_scopes: scopes must be unique")
        for scope in self.oauth_scopes:
            if not is_valid_scope(scope):
                raise ValueError(f"oauth_scopes: {scope!r} is not a valid scope")
        if "client_credentials" in flows:
            if flows != {"client_credentials"}:
                raise ValueError("oauth_flows: client_credentials cannot be combined with code or implicit")
            if not self.generate_secret:
                raise ValueError("generate_secret: the client_credentials flow needs a client secret")
            standard = sorted(scopes & STANDARD_SCOPES)
            if standard:
                raise ValueError(f"oauth_scopes: the client_credentials flow takes only custom scopes, not {', '.join(standard)}")
            if self.identity_pool:
                raise ValueError("identity_pool: a client_credentials client has no users for the identity pool to trust")
        if flows and not scopes:
            raise ValueError("oauth_scopes: OAuth flows need at least one scope")
        if scopes and not flows:
            raise ValueError("oauth_scopes: only with oauth_flows")
        if scopes & {"email", "phone", "profile"} and "openid" not in scopes and "client_credentials" not in flows:
            raise ValueError("oauth_scopes: email, phone and profile need openid")
        _check_urls(self.callback_urls, "callback_urls")
        _check_urls(self.logout_urls, "logout_urls")
        browser = flows & {"code", "implicit"}
        if browser and not self.callback_urls:
            raise ValueError("callback_urls: the code and implicit flows need at least one callback URL")
        if (self.callback_urls or self.logout_urls) and not browser:
            raise ValueError("callback_urls: callback and logout URLs are only used by the code and implicit flows")
        if self.default_redirect_uri is not None and self.default_redirect_uri not in self.callback_urls:
            raise ValueError("default_redirect_uri: must be one of callback_urls")
        return self

    @property
    def is_machine(self) -> bool:
        return "client_credentials" in self.oauth_flows

    @property
    def trusted_by_identity_pool(self) -> bool:
        return self.identity_pool if self.identity_pool is not None else not self.is_machine

    def custom_scopes(self) -> set[str]:
        return set(self.oauth_scopes) - STANDARD_SCOPES


class Group(_Strict):
    name: str = Field(min_length=1, max_length=GROUP_NAME_MAX_LENGTH, pattern=GROUP_NAME_PATTERN)
    description: str = Field("", max_length=2048)
    precedence: int | None = Field(None, ge=0)
    # One of the tier's [roles]: the group's IAM role (cognito:preferred_role in ID tokens).
    role: str | None = None


class PolicyStatement(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sid: str | None = Field(None, alias="Sid", pattern=r"^[A-Za-z0-9]+$")
    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    action: tuple[str, ...] = Field(alias="Action", min_length=1)
    resource: tuple[str, ...] = Field(alias="Resource", min_length=1)
    condition: dict[str, dict[str, Any]] | None = Field(None, alias="Condition")

    @field_validator("action", "resource", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_placeholders(self) -> PolicyStatement:
        for name in placeholders_in(self.as_document()):
            if name not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{{{name}}}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
        return self

    @model_validator(mode="after")
    def _tenant_scoped(self) -> PolicyStatement:
        """An Allow cannot reach beyond the tenant: every Resource is an ARN with no wildcard in
        its partition, service, Region or account, and the statement names the tenant's own
        values in every Resource or in a scoping Condition. (A Deny only ever narrows.)"""
        if self.effect != "Allow":
            return self
        for resource in self.resource:
            _check_arn_shape(resource)
        strings = [*self.resource, *_condition_values(self.condition, scoping_only=False)]
        for value in strings:
            _check_tenant_value_delimited(value)
        if all(_names_the_tenant(r) for r in self.resource):
            return self
        if any(_names_the_tenant(v) for v in _condition_values(self.condition, scoping_only=True)):
            return self
        unscoped = next(r for r in self.resource if not _names_the_tenant(r))
        raise ValueError(
            f"Resource {unscoped!r} is not scoped to the tenant: name "
            f"{', '.join('{{' + p + '}}' for p in sorted(TENANT_PLACEHOLDERS))} in it, or scope the "
            "statement with a Condition on one of them (e.g. dynamodb:LeadingKeys \"{{tenant_id}}#*\")"
        )

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Effect": self.effect, "Action": list(self.action), "Resource": list(self.resource)}
        if self.sid:
            doc["Sid"] = self.sid
        if self.condition:
            doc["Condition"] = self.condition
        return doc


# -- sign-in, attributes, messages, senders, triggers (issue 6) ------------------------------------

StandardAttribute = Literal[
    "address", "birthdate", "email", "family_name", "gender", "given_name", "locale", "middle_name", "name",
    "nickname", "phone_number", "picture", "preferred_username", "profile", "updated_at", "website", "zoneinfo",
]
# Every pool gets this custom attribute (custom:tenant_id): the tenant's id, set by AdminCreateUser.
TENANT_ID_ATTRIBUTE = "tenant_id"
MESSAGE_PLACEHOLDERS = frozenset({"display_name", "tenant_id"})
# A message must fit Cognito's limit with a display name this long; a longer one is shortened.
SHORT_DISPLAY_NAME = 20
_MESSAGE_PLACEHOLDER_MAX = {"display_name": DISPLAY_NAME_MAX_LENGTH, "tenant_id": TENANT_ID_MAX_LENGTH}
_CODE = "{####}"
_LINK_RE = re.compile(r"\{##[^#{}][^{}]*?##\}")  # {##text##}, not the code placeholder {####}
_LAMBDA_ARN_RE = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?$")
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]{1,128}$")
_SES_IDENTITY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ses:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:identity/(?P<identity>[^\s/]+)$")
_IAM_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\x21-\x2e\x30-\x7e]+/)*[\w+=,.@-]{1,64}$", re.ASCII)
_EMAIL_RE = re.compile(r"^[^@\s<>]+@(?P<domain>[^@\s<>]+\.[^@\s<>]+)$")
_FROM_RE = re.compile(r"^(?:[^<>@]*<(?P<inner>[^<>]+)>|(?P<bare>[^<>\s]+))$")
STANDARD_SCOPES = frozenset({"openid", "email", "phone", "profile", "aws.cognito.signin.user.admin"})
SUPPORTED_LOGIN_PROVIDERS = frozenset(
    {"accounts.google.com", "graph.facebook.com", "www.amazon.com", "appleid.apple.com", "api.twitter.com"}
)


def message_placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(text))


# Where a message goes decides how a value is written into it (Cognito's API model):
# - "text" (SMS): as it is; the SMS patterns take any character but line terminators.
# - "email" (subjects): plain text, but the email patterns allow only ASCII whitespace, so other
#   spaces (U+00A0, U+3000 ...) become U+0020.
# - "html" (email bodies, which Cognito sends as HTML): as "email", then HTML-escaped, so that
#   a name with < & " reads as written and cannot add markup.
MessageMedium = Literal["text", "email", "html"]


def _ascii_spaces(value: str) -> str:
    return "".join(" " if char.isspace() else char for char in value)


_WRITERS: dict[str, Callable[[str], str]] = {
    "text": lambda value: value,
    "email": _ascii_spaces,
    "html": lambda value: html.escape(_ascii_spaces(value), quote=True),
}


def render_message(text: str, values: dict[str, str], max_length: int | None = None, *, medium: MessageMedium = "text") -> str:
    """Fill ``{{display_name}}`` and ``{{tenant_id}}`` in, written for ``medium``; Cognito's own
    ``{####}``, ``{##...##}`` and ``{username}`` stay for Cognito to fill. With ``max_length``
    (Cognito's limit for that message) a display name too long to fit is shortened, ending in
    "...": cut before it is escaped, so an HTML entity is never cut in half."""
    write = _WRITERS[medium]

    def fill(name: str) -> str:
        filled = {**values, "display_name": name} if "display_name" in values else values
        return _PLACEHOLDER_RE.sub(lambda m: write(filled[m.group(1)]), text)

    name = values.get("display_name", "")
    rendered = fill(name)
    if max_length is None or len(rendered) <= max_length or not re.search(r"\{\{\s*display_name\s*\}\}", text):
        return rendered
    for room in range(len(name) - 1, 0, -1):  # the longest start of the name that fits
        rendered = fill(name[:room] + "...")
        if len(rendered) <= max_length:
            break
    return rendered


def _checked_message(
    text: str | None, *, field: str, max_length: int, code: bool = False, link: bool = False, username: bool = False
) -> str | None:
    """A message template: known placeholders only, Cognito's required ones present, and within
    Cognito's length limit even with the longest values filled in."""
    if text is None:
        return None
    unknown = message_placeholders(text) - MESSAGE_PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"{field}: unknown placeholder {{{{{min(unknown)}}}}}; known: "
            + ", ".join("{{" + p + "}}" for p in sorted(MESSAGE_PLACEHOLDERS))
        )
    if code and _CODE not in text:
        raise ValueError(f"{field}: must contain {_CODE}, where Cognito puts the code")
    if link and not _LINK_RE.search(text):
        raise ValueError(f"{field}: must contain {{##link text##}}, which Cognito turns into the verification link")
    if username and "{username}" not in text:
        raise ValueError(f"{field}: must contain {{username}}, where Cognito puts the user name")
    # Room for a display name of SHORT_DISPLAY_NAME characters (a longer one is shortened to fit)
    # and for the longest tenant id.
    shortest = render_message(text, {"display_name": "x" * SHORT_DISPLAY_NAME, "tenant_id": "x" * _MESSAGE_PLACEHOLDER_MAX["tenant_id"]})
    if len(shortest) > max_length:
        raise ValueError(
            f"{field}: Cognito allows {max_length} characters; with a {SHORT_DISPLAY_NAME}-character display "
            f"name filled in this one has {len(shortest)}"
        )
    if len(render_message(text, {name: "x" for name in MESSAGE_PLACEHOLDERS})) < 6 and max_length > 140:
        raise ValueError(f"{field}: Cognito needs at least 6 characters")
    return text


class CustomAttribute(_Strict):
    """A custom attribute (``custom:<name>``). Cognito never lets one be required or removed."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,20}$")
    type: Literal["String", "Number", "DateTime", "Boolean"] = "String"
    mutable: bool = True
    min_length: int | None = Field(None, ge=0, le=2048)
    max_length: int | None = Field(None, ge=1, le=2048)
    min_value: int | None = None
    max_value: int | None = None

    @model_validator(mode="after")
    def _constraints_fit_the_type(self) -> CustomAttribute:
        if self.type != "String" and (self.min_length is not None or self.max_length is not None):
            raise ValueError("min_length/max_length: only for type String")
        if self.type != "Number" and (self.min_value is not None or self.max_value is not None):
            raise ValueError("min_value/max_value: only for type Number")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError("min_length: must not exceed max_length")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError("min_value: must not exceed max_value")
        return self


# custom:tenant_id: immutable (set once, by AdminCreateUser, and never changed by anyone, the
# user included), a String as long as a tenant id can be. Not DeveloperOnlyAttribute: that is
# deprecated, and immutability is what keeps a user from moving to another tenant.
TENANT_ID_CUSTOM_ATTRIBUTE = CustomAttribute(
    name=TENANT_ID_ATTRIBUTE, type="String", mutable=False, min_length=3, max_length=TENANT_ID_MAX_LENGTH
)


class SmsSender(_Strict):
    """SmsConfiguration: the IAM role Cognito assumes to send SMS through Amazon SNS."""

    sns_caller_arn: str
    external_id: str | None = Field(None, min_length=1, max_length=1224)
    sns_region: str | None = Field(None, pattern=r"^[a-z]{2}(?:-[a-z]+)+-\d$")
    # SmsAuthenticationMessage for SMS MFA codes.
    mfa_message: str | None = None

    @field_validator("sns_caller_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not _IAM_ROLE_ARN_RE.fullmatch(value):
            raise ValueError("must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return value

    @field_validator("mfa_message")
    @classmethod
    def _mfa_message(cls, value: str | None) -> str | None:
        return _checked_message(value, field="mfa_message", max_length=140, code=True)


class EmailSender(_Strict):
    """EmailConfiguration with EmailSendingAccount DEVELOPER: mail goes out through your verified
    Amazon SES identity instead of Cognito's default sender."""

    ses_source_arn: str
    from_address: str | None = Field(None, max_length=256)
    reply_to: str | None = Field(None, max_length=256)
    configuration_set: str | None = Field(None, pattern=r"^[a-zA-Z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _from_matches_identity(self) -> EmailSender:
        match = _SES_IDENTITY_ARN_RE.fullmatch(self.ses_source_arn)
        if match is None:
            raise ValueError("ses_source_arn: must be an SES identity ARN (arn:aws:ses:<region>:<account>:identity/<email or domain>)")
        identity = match.group("identity").lower()
        if self.reply_to is not None and not _EMAIL_RE.fullmatch(self.reply_to):
            raise ValueError("reply_to: must be one email address")
        if self.from_address is None:
            if "@" not in identity:
                raise ValueError("from_address: needed when ses_source_arn is a domain identity")
            return self
        parsed = _FROM_RE.fullmatch(self.from_address.strip())
        address = (parsed.group("inner") or parsed.group("bare")).strip() if parsed else ""
        found = _EMAIL_RE.fullmatch(address)
        if found is None:
            raise ValueError("from_address: must be an address or 'Name <address>'")
        verified = address.lower() == identity if "@" in identity else found.group("domain").lower() == identity
        if not verified:
            raise ValueError(
                f"from_address: SES sends only from its verified identity; {address!r} is not {identity!r}"
                + ("" if "@" in identity else " or an address in it")
            )
        return self


class Verification(_Strict):
    """VerificationMessageTemplate: how email addresses and phone numbers are verified."""

    email_method: Literal["code", "link"] = "code"
    email_subject: str | None = Field(None, min_length=1, max_length=140)
    email_message: str | None = None
    sms_message: str | None = None

    @model_validator(mode="after")
    def _messages(self) -> Verification:
        _checked_message(self.email_subject, field="email_subject", max_length=140)
        link = self.email_method == "link"
        _checked_message(self.email_message, field="email_message", max_length=20000, code=not link, link=link)
        _checked_message(self.sms_message, field="sms_message", max_length=140, code=True)
        return self


class Invitation(_Strict):
    """AdminCreateUserConfig.InviteMessageTemplate: the message a new user gets with a temporary password."""

    email_subject: str | None = Field(None, min_length=1, max_length=140)
    email_message: str | None = None
    sms_message: str | None = None

    @model_validator(mode="after")
    def _messages(self) -> Invitation:
        _checked_message(self.email_subject, field="email_subject", max_length=140)
        _checked_message(self.email_message, field="email_message", max_length=20000, code=True, username=True)
        _checked_message(self.sms_message, field="sms_message", max_length=140, code=True, username=True)
        return self


LAMBDA_TRIGGERS = {
    "pre_sign_up": "PreSignUp",
    "custom_message": "CustomMessage",
    "post_confirmation": "PostConfirmation",
    "pre_authentication": "PreAuthentication",
    "post_authentication": "PostAuthentication",
    "define_auth_challenge": "DefineAuthChallenge",
    "create_auth_challenge": "CreateAuthChallenge",
    "verify_auth_challenge_response": "VerifyAuthChallengeResponse",
    "user_migration": "UserMigration",
}


class LambdaTriggers(_Strict):
    """LambdaConfig: functions Cognito calls, by ARN. Each function's resource policy must let
    cognito-idp.amazonaws.com invoke it; Cognito calls only functions in the pool's Region."""

    pre_sign_up: str | None = None
    custom_message: str | None = None
    post_confirmation: str | None = None
    pre_authentication: str | None = None
    post_authentication: str | None = None
    define_auth_challenge: str | None = None
    create_auth_challenge: str | None = None
    verify_auth_challenge_response: str | None = None
    user_migration: str | None = None
    pre_token_generation: str | None = None
    pre_token_generation_version: Literal["V1_0", "V2_0", "V3_0"] | None = None
    custom_email_sender: str | None = None
    custom_sms_sender: str | None = None
    kms_key_id: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LambdaTriggers:
        for field in (*LAMBDA_TRIGGERS, "pre_token_generation", "custom_email_sender", "custom_sms_sender"):
            value = getattr(self, field)
            if value is not None and not _LAMBDA_ARN_RE.fullmatch(value):
                raise ValueError(f"{field}: must be a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)")
        if self.kms_key_id is not None and not _KMS_KEY_ARN_RE.fullmatch(self.kms_key_id):
            raise ValueError("kms_key_id: must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        senders = self.custom_email_sender is not None or self.custom_sms_sender is not None
        if senders and self.kms_key_id is None:
            raise ValueError("kms_key_id: custom_email_sender and custom_sms_sender need the KMS key Cognito encrypts codes with")
        if self.kms_key_id is not None and not senders:
            raise ValueError("kms_key_id: only used with custom_email_sender or custom_sms_sender")
        if self.pre_token_generation_version is not None and self.pre_token_generation is None:
            raise ValueError("pre_token_generation_version: set pre_token_generation too")
        challenge = [self.define_auth_challenge, self.create_auth_challenge, self.verify_auth_challenge_response]
        if any(challenge) and not all(challenge):
            raise ValueError(
                "define_auth_challenge: custom authentication needs all three of define_auth_challenge, "
                "create_auth_challenge and verify_auth_challenge_response"
            )
        return self


class ResourceScope(_Strict):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[\x21\x23-\x2E\x30-\x5B\x5D-\x7E]+$")
    description: str = Field(min_length=1, max_length=256)


class ResourceServer(_Strict):
    """A resource server (an API) in the tenant's pool with custom scopes ``<identifier>/<scope>``."""

    identifier: str = Field(min_length=1, max_length=256, pattern=SCOPE_PATTERN)
    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_ +=,.@-]+$")
    scopes: tuple[ResourceScope, ...] = Field((), max_length=100)

    @model_validator(mode="after")
    def _unique_scopes(self) -> ResourceServer:
        names = [scope.name for scope in self.scopes]
        if len(set(names)) != len(names):
            raise ValueError("scopes: scope names must be unique")
        return self

    def scope_names(self) -> set[str]:
        return {f"{self.identifier}/{scope.name}" for scope in self.scopes}


class RoleRule(_Strict):
    """One rule of a Rules role mapping: a claim of the user's ID token -> a role."""

    claim: str = Field(min_length=1, max_length=64)
    match_type: Literal["Equals", "Contains", "StartsWith", "NotEqual"] = "Equals"
    value: str = Field(min_length=1, max_length=128)
    # "authenticated" (the tier's authenticated role) or the name of one of the tier's [roles].
    role: str


class RoleMapping(_Strict):
    type: Literal["Token", "Rules"]
    ambiguous_role_resolution: Literal["AuthenticatedRole", "Deny"] = "AuthenticatedRole"
    rules: tuple[RoleRule, ...] = Field((), max_length=25)

    @model_validator(mode="after")
    def _rules_for_rules(self) -> RoleMapping:
        if self.type == "Rules" and not self.rules:
            raise ValueError("rules: a Rules mapping needs at least one rule")
        if self.type == "Token" and self.rules:
            raise ValueError("rules: a Token mapping takes the role from the token's cognito:preferred_role; no rules")
        return self


class IdentityPoolSettings(_Strict):
    # SupportedLoginProviders: social identity providers the identity pool trusts directly,
    # e.g. {"accounts.google.com" = "<Google client id>"}.
    login_providers: dict[str, str] = Field(default_factory=dict)
    # None: every identity gets the default roles (authenticated / unauthenticated).
    role_mapping: RoleMapping | None = None
    server_side_token_check: bool = True

    @field_validator("login_providers")
    @classmethod
    def _providers(cls, providers: dict[str, str]) -> dict[str, str]:
        for provider, app_id in providers.items():
            if provider not in SUPPORTED_LOGIN_PROVIDERS:
                raise ValueError(f"{provider!r} is not one of {', '.join(sorted(SUPPORTED_LOGIN_PROVIDERS))}")
            if not 1 <= len(app_id) <= 128 or not re.fullmatch(r"[\w.;_/-]+", app_id, re.ASCII):
                raise ValueError(f"{provider}: the app id must be 1-128 of letters, digits and . ; _ / -")
        return providers


class ExtraRole(_Strict):
    """A tenant-scoped IAM role besides the authenticated and unauthenticated ones, for a
    role-mapping rule or a group (cognito:preferred_role). Named <prefix>-<tenant_id>-<name>."""

    description: str = Field("", max_length=1000)
    policy: tuple[PolicyStatement, ...] = Field(min_length=1)


class TierTemplate(_Strict):
    name: str = Field(pattern=TIER_NAME_PATTERN)
    description: str = Field(min_length=1, max_length=500)
    feature_plan: Literal["LITE", "ESSENTIALS", "PLUS"] = "ESSENTIALS"
    deletion_protection: bool = False
    # -- sign-in and attributes
    username_attributes: tuple[Literal["email", "phone_number"], ...] = ("email",)
    alias_attributes: tuple[Literal["email", "phone_number", "preferred_username"], ...] = ()
    auto_verified_attributes: tuple[Literal["email", "phone_number"], ...] = ("email",)
    case_sensitive_usernames: bool = False
    allow_self_sign_up: bool = False
    required_attributes: tuple[StandardAttribute, ...] = ()
    custom_attributes: tuple[CustomAttribute, ...] = Field((), max_length=49)
    # -- security
    mfa: Literal["OFF", "OPTIONAL", "ON"] = "OFF"
    mfa_methods: tuple[Literal["TOTP", "SMS", "EMAIL"], ...] = ()
    password_policy: PasswordPolicy = PasswordPolicy()
    account_recovery: tuple[Literal["verified_email", "verified_phone_number", "admin_only"], ...] = Field(
        ("verified_email",), min_length=1, max_length=2
    )
    device_remembering: Literal["off", "always", "user_opt_in"] = "off"
    # -- messages and senders
    verification: Verification = Verification()
    invitation: Invitation = Invitation()
    email_sender: EmailSender | None = None
    sms: SmsSender | None = None
    lambda_triggers: LambdaTriggers = LambdaTriggers()
    # -- app clients
    tokens: TokenValidity = TokenValidity()
    app_client: AppClient = AppClient()
    app_clients: dict[str, AppClient] = Field(default_factory=dict)
    resource_servers: tuple[ResourceServer, ...] = Field((), max_length=25)
    groups: tuple[Group, ...] = ()
    admin_group: str | None = None
    hosted_ui_domain: bool = False
    # -- identity pool and roles
    allow_guest_identities: bool = False
    identity_pool: IdentityPoolSettings = IdentityPoolSettings()
    authenticated_policy: tuple[PolicyStatement, ...] = Field(min_length=1)
    unauthenticated_policy: tuple[PolicyStatement, ...] = ()
    roles: dict[str, ExtraRole] = Field(default_factory=dict)
    # -- copied onto the user pool, identity pool, roles and secrets, under the ownership tags
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> TierTemplate:
        if self.mfa != "OFF" and not self.mfa_methods:
            raise ValueError("mfa_methods: MFA OPTIONAL or ON needs at least one method (TOTP, SMS, EMAIL)")
        if self.mfa == "OFF" and self.mfa_methods:
            raise ValueError("mfa_methods: must be empty when mfa is OFF")
        if self.username_attributes and self.alias_attributes:
            raise ValueError("alias_attributes: Cognito accepts either username_attributes or alias_attributes, not both")
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("groups: group names must be unique")
        if self.admin_group is not None and self.admin_group not in names:
            raise ValueError(f"admin_group: {self.admin_group!r} is not one of the tier's groups")
        if self.allow_guest_identities and not self.unauthenticated_policy:
            raise ValueError("unauthenticated_policy: guest identities need a policy for the unauthenticated role")
        if not self.allow_guest_identities and self.unauthenticated_policy:
            raise ValueError("unauthenticated_policy: only allowed when allow_guest_identities is true")
        self._check_attributes()
        self._check_security()
        self._check_clients()
        self._check_identity_pool()
        self._check_tags()
        return self

    def _check_attributes(self) -> None:
        for field in ("username_attributes", "alias_attributes", "auto_verified_attributes", "required_attributes", "mfa_methods", "account_recovery"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field}: values must be unique")
        custom = [attribute.name for attribute in self.custom_attributes]
        if len(set(custom)) != len(custom):
            raise ValueError("custom_attributes: names must be unique")
        if TENANT_ID_ATTRIBUTE in custom:
            raise ValueError(f"custom_attributes: {TENANT_ID_ATTRIBUTE!r} is added to every pool by the service; do not declare it")

    def _check_security(self) -> None:
        plan_needed = "{field}: {what} needs the ESSENTIALS or PLUS feature plan"
        if "SMS" in self.mfa_methods and self.sms is None:
            raise ValueError("sms: SMS MFA needs [sms] with the SNS caller role (sns_caller_arn)")
        if "EMAIL" in self.mfa_methods:
            if self.feature_plan == "LITE":
                raise ValueError(plan_needed.format(field="feature_plan", what="EMAIL MFA"))
            if self.email_sender is None:
                raise ValueError("email_sender: EMAIL MFA needs an Amazon SES sender ([email_sender])")
        if "phone_number" in self.auto_verified_attributes and self.sms is None:
            raise ValueError("sms: verifying phone numbers needs [sms] with the SNS caller role (sns_caller_arn)")
        if "verified_phone_number" in self.account_recovery and self.sms is None:
            raise ValueError("sms: account recovery by phone needs [sms] with the SNS caller role (sns_caller_arn)")
        if "admin_only" in self.account_recovery and len(self.account_recovery) > 1:
            raise ValueError("account_recovery: admin_only cannot be combined with another mechanism")
        if self.verification.email_method == "link" and "email" not in self.auto_verified_attributes:
            raise ValueError("verification.email_method: link verifies email addresses; add email to auto_verified_attributes")
        version = self.lambda_triggers.pre_token_generation_version
        if version in ("V2_0", "V3_0") and self.feature_plan == "LITE":
            field = "lambda_triggers.pre_token_generation_version"
            raise ValueError(plan_needed.format(field=field, what=f"Lambda version {version}"))
        if self.sms is not None and self.sms.mfa_message is not None and "SMS" not in self.mfa_methods:
            raise ValueError("sms.mfa_message: only used with SMS MFA")

    def _check_clients(self) -> None:
        if self.app_clients and "app_client" in self.model_fields_set:
            raise ValueError("app_clients: give either [app_client] (one client) or [app_clients.<name>] tables, not both")
        for name in self.app_clients:
            if not re.fullmatch(APP_CLIENT_NAME_PATTERN, name):
                raise ValueError(f"app_clients: client name {name!r} must be 1-20 lower-case letters, digits and hyphens, starting with a letter")
        if len(self.app_clients) > 20:
            raise ValueError("app_clients: at most 20 clients per tier")
        identifiers = [server.identifier for server in self.resource_servers]
        if len(set(identifiers)) != len(identifiers):
            raise ValueError("resource_servers: identifiers must be unique")
        declared = set().union(*(server.scope_names() for server in self.resource_servers)) if self.resource_servers else set()
        for name, client in self.clients.items():
            unknown = sorted(client.custom_scopes() - declared)
            if unknown:
                raise ValueError(f"app_clients.{name}.oauth_scopes: {', '.join(unknown)} is not a scope of the tier's resource_servers")
            if client.oauth_flows and not self.hosted_ui_domain:
                raise ValueError(f"app_clients.{name}.oauth_flows: OAuth flows run on the hosted UI domain; set hosted_ui_domain = true")

    def _check_identity_pool(self) -> None:
        settings = self.identity_pool
        if not any(client.trusted_by_identity_pool for client in self.clients.values()) and not settings.login_providers:
            raise ValueError("identity_pool: it must trust at least one app client (identity_pool = true) or a login provider")
        for name in self.roles:
            if not re.fullmatch(EXTRA_ROLE_NAME_PATTERN, name) or name in RESERVED_ROLE_NAMES:
                raise ValueError(f"roles: role name {name!r} must be 1-16 lower-case letters and digits, not auth or unauth")
        used: set[str] = set()
        for index, rule in enumerate(settings.role_mapping.rules if settings.role_mapping else ()):
            if rule.role != "authenticated" and rule.role not in self.roles:
                raise ValueError(f"identity_pool.role_mapping.rules.{index}.role: {rule.role!r} is neither 'authenticated' nor one of the tier's roles")
            used.add(rule.role)
        for group in self.groups:
            if group.role is not None:
                if group.role not in self.roles:
                    raise ValueError(f"groups: group {group.name!r} names role {group.role!r}, which is not one of the tier's roles")
                used.add(group.role)
        unused = sorted(set(self.roles) - used)
        if unused:
            raise ValueError(f"roles: {', '.join(unused)} is used by no role_mapping rule and no group")

    def _check_tags(self) -> None:
        try:
            check_tags(self.tags)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    # -- questions the provisioning plan asks -----------------------------------------------------

    @property
    def clients(self) -> dict[str, AppClient]:
        """The tier's app clients by name, the primary (whose id is ``app_client_id``) first. The
        single ``[app_client]`` form is one client named ``default``."""
        return dict(self.app_clients) if self.app_clients else {"default": self.app_client}

    @property
    def primary_client(self) -> str:
        return next(iter(self.clients))

    def client_tokens(self, name: str) -> TokenValidity:
        return self.clients[name].tokens or self.tokens

    def all_custom_attributes(self) -> tuple[CustomAttribute, ...]:
        return (TENANT_ID_CUSTOM_ATTRIBUTE, *self.custom_attributes)

    def summary(self) -> dict[str, Any]:
        """What GET /v1/tiers shows: the template's settings, policies included."""
        data = self.model_dump(mode="json", by_alias=True)
        data["has_admin_group"] = self.admin_group is not None
        data.pop("app_client", None)
        data["app_clients"] = {name: client.model_dump(mode="json") for name, client in self.clients.items()}
        data["primary_app_client"] = self.primary_client
        data["custom_attributes"] = [attribute.model_dump(mode="json") for attribute in self.all_custom_attributes()]
        return data


def template_tags(template: TierTemplate | None, ownership: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The tags of a tenant's resources: the template's, then ``extra`` (the tenant's own), and
    the ownership tags last so that nothing overrides them."""
    return {**(template.tags if template else {}), **(extra or {}), **ownership}


def _names_the_tenant(value: str) -> bool:
    return any(name in TENANT_PLACEHOLDERS for name in _PLACEHOLDER_RE.findall(value))


def _check_arn_shape(resource: str) -> None:
    """``arn:partition:service:region:account:resource`` (or ``{{user_pool_arn}}``) with no
    wildcard or policy variable in the first five fields: "*" alone, or "arn:aws:s3:*:*:...",
    would reach other accounts, Regions or services."""
    whole = _PLACEHOLDER_RE.fullmatch(resource)
    if whole is not None and whole.group(1) == "user_pool_arn":
        return
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"Resource {resource!r} must be an ARN (arn:{{{{partition}}}}:service:region:account:resource)")
    partition, service, region, account = parts[1:5]
    named = _PLACEHOLDER_RE.fullmatch(partition)
    if not ((named and named.group(1) == "partition") or partition in PARTITIONS):
        raise ValueError(f"Resource {resource!r}: the partition must be {{{{partition}}}} or one of {', '.join(sorted(PARTITIONS))}")
    for field, value in (("service", service), ("Region", region), ("account", account)):
        if any(w in value for w in _WILDCARDS) or (field == "service" and not value):
            raise ValueError(f"Resource {resource!r}: no wildcard or policy variable allowed in the {field} field")


def _check_tenant_value_delimited(value: str) -> None:
    """No wildcard before a tenant placeholder, and a delimiter between it and any wildcard after
    it: otherwise one tenant's string matches another tenant's resources."""
    for match in _PLACEHOLDER_RE.finditer(value):
        if match.group(1) not in TENANT_PLACEHOLDERS:
            continue
        before, after = value[: match.start()], value[match.end() :]
        if any(w in before for w in _WILDCARDS):
            raise ValueError(
                f"{value!r}: a wildcard or policy variable before {match.group(0)} matches other tenants' values too"
            )
        wildcard = min((i for i in (after.find(w) for w in _WILDCARDS) if i >= 0), default=None)
        delimiter = next((i for i, char in enumerate(after) if char in _DELIMITERS), None)
        if wildcard is not None and (delimiter is None or delimiter > wildcard):
            raise ValueError(
                f"{value!r}: put one of {' '.join(sorted(_DELIMITERS))} between {match.group(0)} and the wildcard "
                "after it; otherwise the tenant's value is a prefix that matches other tenants' values too"
            )


def _condition_values(condition: dict[str, dict[str, Any]] | None, *, scoping_only: bool) -> list[str]:
    """The string values of a Condition; with ``scoping_only``, only those of operators that can
    confine a statement: not negated ones (StringNotLike), not ...IfExists (true when the key is
    absent) and not ForAnyValue (true when one of several keys matches)."""
    values: list[str] = []
    for operator, keys in (condition or {}).items():
        if scoping_only and ("Not" in operator or operator.endswith("IfExists") or operator.startswith("ForAnyValue:")):
            continue
        for value in keys.values():
            values.extend(v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, str))
    return values


def placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER_RE.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders_in(k) | placeholders_in(v) for k, v in value.items())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(placeholders_in(v) for v in value)) if value else set()
    return set()


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    # loc is ("<tier>", "field", ...) because we validate tier by tier.
    tier, field = (loc[0], ".".join(loc[1:]) or "(template)") if loc else ("?", "?")
    return f"tier {tier!r}, field {field!r}: {error['msg']}"


def parse_tiers(data: dict[str, Any]) -> dict[str, TierTemplate]:
    """Validate a whole templates document ``{"tiers": {name: {...}}}``.

    Raises TemplateError naming every bad tier and field.
    """
    tiers = data.get("tiers") if isinstance(data, dict) else None
    if not isinstance(tiers, dict) or not tiers:
        raise TemplateError("the templates file needs a non-empty [tiers] table")
    unknown_top = set(data) - {"tiers"}
    if unknown_top:
        raise TemplateError(f"unknown top-level keys: {', '.join(sorted(unknown_top))}")
    parsed: dict[str, TierTemplate] = {}
    problems: list[str] = []
    for name, body in tiers.items():
        if not isinstance(body, dict):
            problems.append(f"tier {name!r}: must be a table")
            continue
        try:
            parsed[name] = TierTemplate.model_validate({**body, "name": name})
        except ValidationError as exc:
            errors = exc.errors()
            for error in errors:
                # A list whose only items are invalid is also reported "too short": noise.
                if error["type"] == "too_short" and any(
                    other["loc"][: len(error["loc"])] == error["loc"] and len(other["loc"]) > len(error["loc"])
                    for other in errors
                ):
                    continue
                problems.append(_describe({**error, "loc": (name, *error["loc"])}))
    if problems:
        raise TemplateError("invalid tier templates: " + "; ".join(problems))
    return parsed
