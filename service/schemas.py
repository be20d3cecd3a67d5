"""Request and response bodies of the v1 API (API.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from domain.naming import (
    DISPLAY_NAME_MAX_LENGTH,
    DISPLAY_NAME_RULE,
    MAX_URL_LENGTH,
    MAX_URLS,
    TAG_RULE,
    TENANT_ID_PATTERN,
    TIER_NAME_MAX_LENGTH,
)
from domain.tenant import Tenant
from domain.tenant_settings import PROVIDER_TYPES

# Deliberately loose (RFC 5322 is not a regex); Cognito validates the address again.
# Spelt out rather than `\s`, whose members differ between Python (which checks the body) and the
# ECMA-262 regexes of JSON Schema (which clients and schemathesis read): Python's includes \x1c-\x1f
# and \x85, ECMA's \ufeff. Controls and every whitespace of either are excluded here.
_EMAIL_CHAR = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
EMAIL_PATTERN = rf"^{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)


_Url = Annotated[str, Meta(min_length=1, max_length=MAX_URL_LENGTH, examples=["https://app.acme.example/callback"])]
_Urls = Annotated[
    list[_Url],
    Meta(
        max_length=MAX_URLS,
        description="https URLs (http only for localhost), no #fragment, at most 100 (Cognito's limits).",
    ),
]
_Tags = Annotated[
    dict[str, str],
    Meta(
        description=f"Extra tags for every AWS resource of the tenant, under the service's ownership tags: {TAG_RULE}.",
        examples=[{"cost-center": "cc-1234"}],
    ),
]
_ProviderType = Annotated[str, Meta(description=" | ".join(PROVIDER_TYPES), examples=["OIDC"])]


class IdentityProviderIn(msgspec.Struct, forbid_unknown_fields=True):
    """A tenant's own identity provider. SAML: ``metadata_url`` or ``metadata_document``. OIDC:
    ``issuer``, ``client_id``, ``client_secret``, ``scopes`` (with openid),
    ``attributes_request_method``. Google, Facebook, LoginWithAmazon (named as their type):
    ``client_id``, ``client_secret``, ``scopes``."""

    type: _ProviderType
    client_id: str | None = None
    client_secret: Annotated[
        str | None, Meta(description="Stored in AWS Secrets Manager; never returned, logged or kept in the registry.")
    ] = None
    scopes: list[str] | None = None
    issuer: str | None = None
    attributes_request_method: Annotated[str | None, Meta(description="GET | POST (OIDC)")] = None
    metadata_url: str | None = None
    metadata_document: str | None = None
    idp_signout: bool | None = None
    attribute_mapping: Annotated[
        dict[str, str] | None, Meta(description="User pool attribute -> provider attribute.", examples=[{"email": "email"}])
    ] = None


class IdentityProviderPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A merge patch of one provider: a member given replaces the stored one, ``null`` removes it;
    without ``client_secret`` the stored secret stays."""

    type: _ProviderType | msgspec.UnsetType = msgspec.UNSET
    client_id: str | None | msgspec.UnsetType = msgspec.UNSET
    client_secret: str | None | msgspec.UnsetType = msgspec.UNSET
    scopes: list[str] | None | msgspec.UnsetType = msgspec.UNSET
    issuer: str | None | msgspec.UnsetType = msgspec.UNSET
    attributes_request_method: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata_url: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata_document: str | None | msgspec.UnsetType = msgspec.UNSET
    idp_signout: bool | None | msgspec.UnsetType = msgspec.UNSET
    attribute_mapping: dict[str, str | None] | None | msgspec.UnsetType = msgspec.UNSET


class PatchTenant(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON merge patch (RFC 7396) of a tenant's settings: members left out stay as they are,
    ``null`` removes (resets) one, objects (``tags``, ``identity_providers``) merge member by
    member and lists replace the stored list."""

    display_name: Annotated[
        str, Meta(min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH, description=DISPLAY_NAME_RULE)
    ] | msgspec.UnsetType = msgspec.UNSET
    callback_urls: _Urls | None | msgspec.UnsetType = msgspec.UNSET
    logout_urls: _Urls | None | msgspec.UnsetType = msgspec.UNSET
    tags: dict[str, str | None] | None | msgspec.UnsetType = msgspec.UNSET
    identity_providers: Annotated[
        dict[str, IdentityProviderPatch | None],
        Meta(description="Keyed by provider name; null removes a provider (and its stored secret)."),
    ] | None | msgspec.UnsetType = msgspec.UNSET


class CreateTenant(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: Annotated[
        str,
        Meta(
            pattern=TENANT_ID_PATTERN,
            description="Immutable id: 3-40 lower-case letters, digits and hyphens.",
            examples=["acme"],
        ),
    ]
    tier: Annotated[
        str, Meta(min_length=1, max_length=TIER_NAME_MAX_LENGTH, description="A tier from GET /v1/tiers.", examples=["standard"])
    ]
    display_name: Annotated[
        str, Meta(min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH, description=DISPLAY_NAME_RULE, examples=["Acme Corp"])
    ]
    admin_email: Annotated[
        str,
        Meta(
            pattern=EMAIL_PATTERN,
            max_length=254,
            description="When given, an admin user with this email is created in the tier's admin group.",
            examples=["admin@acme.example"],
        ),
    ] | None = None
    callback_urls: _Urls | None = None
    logout_urls: _Urls | None = None
    tags: _Tags | None = None
    identity_providers: Annotated[
        dict[str, IdentityProviderIn],
        Meta(
            description="The tenant's own identity providers, keyed by provider name (3-32 letters, digits and ._-; "
            "a social provider is named as its type), attached to its user pool and allowed on its app clients."
        ),
    ] | None = None

    def settings_json(self) -> dict[str, Any]:
        """The per-tenant settings as plain JSON, for domain/tenant_settings.parse_settings."""
        data = msgspec.to_builtins(self)
        settings = {key: data[key] for key in ("callback_urls", "logout_urls", "tags", "identity_providers") if data.get(key) is not None}
        if "identity_providers" in settings:  # a member left out arrives as None: leave it out again
            settings["identity_providers"] = {
                name: {k: v for k, v in body.items() if v is not None} for name, body in settings["identity_providers"].items()
            }
        return settings

    def __post_init__(self) -> None:
        # msgspec checks `pattern` with re.search, whose `$` also matches before a final "\n" (JSON
        # Schema's does not): "boss@example.com\n" passed and went on to Cognito. tenant_id is
        # checked again by the domain, with fullmatch; the email is checked so here.
        if self.admin_email is not None and not _EMAIL_RE.fullmatch(self.admin_email):
            raise ValueError(f"Expected `str` matching regex {EMAIL_PATTERN!r} - at `$.admin_email`")


class LastErrorOut(msgspec.Struct):
    code: str
    message: str
    step: str | None = None


class ResourcesOut(msgspec.Struct):
    account_id: str
    region: str
    user_pool_id: str | None
    user_pool_arn: str | None
    app_client_id: str | None
    identity_pool_id: str | None
    authenticated_role_arn: str | None
    unauthenticated_role_arn: str | None
    issuer_url: str | None
    hosted_ui_domain: str | None
    app_client_secret_arn: Annotated[
        str | None,
        Meta(
            description="ARN of the AWS Secrets Manager secret holding the app client's secret, for tiers "
            "whose app client is confidential; the secret itself is never returned."
        ),
    ] = None
    app_clients: Annotated[
        dict[str, str] | None,
        Meta(
            description="Every app client of the tenant's tier by its name in the tier template -> client id; "
            "the primary one (app_client_id) first."
        ),
    ] = None
    app_client_secret_arns: Annotated[
        dict[str, str] | None,
        Meta(description="App client name -> ARN of the AWS Secrets Manager secret holding its secret (confidential clients only).")
    ] = None


class IdentityProviderOut(msgspec.Struct, omit_defaults=True):
    type: str
    client_id: str | None = None
    client_secret_arn: Annotated[
        str | None, Meta(description="The AWS Secrets Manager secret holding the client secret; never the secret.")
    ] = None
    scopes: list[str] | None = None
    issuer: str | None = None
    attributes_request_method: str | None = None
    metadata_url: str | None = None
    metadata_document: str | None = None
    idp_signout: bool | None = None
    attribute_mapping: dict[str, str] | None = None


class TenantSettingsOut(msgspec.Struct):
    callback_urls: list[str]
    logout_urls: list[str]
    tags: dict[str, str]
    identity_providers: dict[str, IdentityProviderOut]


class TenantOut(msgspec.Struct):
    tenant_id: str
    display_name: str
    tier: str
    status: Annotated[str, Meta(description="provisioning | active | failed | deprovisioning | deleted")]
    created_at: str
    updated_at: str
    last_error: LastErrorOut | None
    resources: ResourcesOut
    admin_email: str | None = None
    settings: TenantSettingsOut | None = None
    settings_status: Annotated[
        str,
        Meta(
            description="applied | pending (a PATCH is being applied; the tenant stays active) | failed (see "
            "last_error; PATCH again, even {}, to retry)"
        ),
    ] = "applied"


class TenantPage(msgspec.Struct):
    items: list[TenantOut]
    next_cursor: str | None


class AuditEventOut(msgspec.Struct):
    id: Annotated[int, Meta(description="Increases with every event; the page order.")]
    tenant_id: str
    at: str
    actor: Annotated[
        str,
        Meta(
            description='Who: an API key id ("key_..."), a token subject ("jwt:<issuer>#<sub>"), '
            '"worker:<worker id>" for a provisioning step, or "system".'
        ),
    ]
    action: Annotated[str, Meta(examples=["tenant.create", "step.user_pool", "tenant.active"])]
    outcome: Annotated[
        str,
        Meta(
            description="ok | accepted | refused | error; skipped for a teardown step that had nothing to "
            "delete of a resource the tenant's tier never has"
        ),
    ]
    detail: Annotated[
        dict[str, Any], Meta(description="HTTP status, error code, step duration; never a key, token or secret.")
    ]
    request_id: str | None


class AuditEventPage(msgspec.Struct):
    items: list[AuditEventOut]
    next_cursor: str | None


class TierOut(msgspec.Struct):
    name: str
    description: str
    settings: dict[str, Any]


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    tenant_status: str | None = None
    code: str | None = None


def tenant_out(tenant: Tenant) -> TenantOut:
    error = tenant.last_error
    return TenantOut(
        tenant_id=tenant.tenant_id,
        display_name=tenant.spec.display_name,
        tier=tenant.spec.tier,
        status=tenant.status.value,
        created_at=tenant.created_at.isoformat(),
        updated_at=tenant.updated_at.isoformat(),
        last_error=LastErrorOut(error.code, error.message, error.step) if error else None,
        resources=ResourcesOut(**tenant.public_resources()),
        admin_email=tenant.spec.admin_email,
        settings=msgspec.convert(tenant.spec.settings.public(), TenantSettingsOut),
        settings_status=tenant.settings_status.value,
    )
