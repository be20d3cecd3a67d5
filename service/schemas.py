"""Request and response bodies of the v1 API (API.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from domain.naming import TENANT_ID_PATTERN
from domain.tenant import Tenant

# Deliberately loose (RFC 5322 is not a regex); Cognito validates the address again.
# Spelt out rather than `\s`, whose members differ between Python (which checks the body) and the
# ECMA-262 regexes of JSON Schema (which clients and schemathesis read): Python's includes \x1c-\x1f
# and \x85, ECMA's \ufeff. Controls and every whitespace of either are excluded here.
_EMAIL_CHAR = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
EMAIL_PATTERN = rf"^{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)


class CreateTenant(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: Annotated[
        str,
        Meta(
            pattern=TENANT_ID_PATTERN,
            description="Immutable id: 3-40 lower-case letters, digits and hyphens.",
            examples=["acme"],
        ),
    ]
    tier: Annotated[str, Meta(min_length=1, max_length=32, description="A tier from GET /v1/tiers.", examples=["standard"])]
    display_name: Annotated[str, Meta(min_length=1, max_length=128, examples=["Acme Corp"])]
    admin_email: Annotated[
        str,
        Meta(
            pattern=EMAIL_PATTERN,
            max_length=254,
            description="When given, an admin user with this email is created in the tier's admin group.",
            examples=["admin@acme.example"],
        ),
    ] | None = None

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
    outcome: Annotated[str, Meta(description="ok | accepted | refused | error")]
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
    )
