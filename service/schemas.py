"""Request and response bodies of the v1 API (API.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from domain.naming import TENANT_ID_PATTERN
from domain.tenant import Tenant

# Deliberately loose (RFC 5322 is not a regex); Cognito validates the address again.
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


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
