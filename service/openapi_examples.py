"""Examples for the OpenAPI document: one per request body and per documented response.

Fixed values, not generated ones: Litestar's generated examples are random (polyfactory), which
would make the committed document differ on every export. tests/integration/test_openapi.py checks
that every operation's request body and every response it documents carry an example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import Example


@dataclass
class _Example(Example):
    """An Example whose value is written as given. Litestar drops every None member of a dict
    while it writes the document, which would strip `"last_error": null` and the like from the
    examples and leave them at odds with their own schemas."""

    def to_schema(self) -> dict[str, Any]:
        schema = {"value": self.value}
        if self.summary:
            schema["summary"] = self.summary
        return schema

_POOL = "us-east-1_Ab12Cd34E"
_ACCOUNT = "123456789012"
_IDENTITY_POOL = "us-east-1:0f6c3f4e-8c55-4c1f-9a53-1b2f0a7e6d21"

RESOURCES_EMPTY: dict[str, Any] = {
    "account_id": _ACCOUNT,
    "region": "us-east-1",
    "user_pool_id": None,
    "user_pool_arn": None,
    "app_client_id": None,
    "identity_pool_id": None,
    "authenticated_role_arn": None,
    "unauthenticated_role_arn": None,
    "issuer_url": None,
    "hosted_ui_domain": None,
    "app_client_secret_arn": None,
}
RESOURCES_ACTIVE: dict[str, Any] = {
    **RESOURCES_EMPTY,
    "user_pool_id": _POOL,
    "user_pool_arn": f"arn:aws:cognito-idp:us-east-1:{_ACCOUNT}:userpool/{_POOL}",
    "app_client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
    "identity_pool_id": _IDENTITY_POOL,
    "authenticated_role_arn": f"arn:aws:iam::{_ACCOUNT}:role/tenants/tenants-acme-auth",
    "issuer_url": f"https://cognito-idp.us-east-1.amazonaws.com/{_POOL}",
}
_TENANT_BASE: dict[str, Any] = {
    "tenant_id": "acme",
    "display_name": "Acme Corp",
    "tier": "standard",
    "created_at": "2026-11-26T09:00:00+00:00",
    "admin_email": "admin@acme.example",
}
TENANT_PROVISIONING: dict[str, Any] = {
    **_TENANT_BASE,
    "status": "provisioning",
    "updated_at": "2026-11-26T09:00:00+00:00",
    "last_error": None,
    "resources": RESOURCES_EMPTY,
}
TENANT_ACTIVE: dict[str, Any] = {
    **_TENANT_BASE,
    "status": "active",
    "updated_at": "2026-11-26T09:00:01+00:00",
    "last_error": None,
    "resources": RESOURCES_ACTIVE,
}
TENANT_FAILED: dict[str, Any] = {
    **_TENANT_BASE,
    "status": "failed",
    "updated_at": "2026-11-26T09:00:02+00:00",
    "last_error": {
        "code": "quota_exceeded",
        "message": "An AWS quota is reached: IAM roles per account (1,000 by default, 5,000 at most; global, "
        "all Regions) (LimitExceeded on CreateRole). Delete unused tenants, raise the quota where AWS allows "
        "it, or use another account, then retry. AWS said: Cannot exceed quota for RolesPerAccount: 1000",
        "step": "auth_role",
    },
    "resources": {**RESOURCES_ACTIVE, "authenticated_role_arn": None},
}
TENANT_DEPROVISIONING: dict[str, Any] = {
    **TENANT_ACTIVE,
    "status": "deprovisioning",
    "updated_at": "2026-11-26T10:00:00+00:00",
}
TENANT_DELETED: dict[str, Any] = {
    **_TENANT_BASE,
    "status": "deleted",
    "updated_at": "2026-11-26T10:00:01+00:00",
    "last_error": None,
    "resources": RESOURCES_EMPTY,
}

CREATE_TENANT: dict[str, Any] = {
    "tenant_id": "acme",
    "tier": "standard",
    "display_name": "Acme Corp",
    "admin_email": "admin@acme.example",
}
# PATCH /v1/tenants/{tenant_id}: a merge patch, and the tenant while the change is applied.
PATCH_TENANT: dict[str, Any] = {
    "callback_urls": ["https://app.acme.example/auth/callback"],
    "tags": {"cost-center": None, "team": "identity"},
    "identity_providers": {
        "Google": None,
        "acme-oidc": {
            "type": "OIDC",
            "issuer": "https://login.acme.example",
            "client_id": "acme-portal",
            "client_secret": "shown-here-only-as-an-example",
            "scopes": ["openid", "email"],
            "attribute_mapping": {"email": "email"},
        },
    },
}
TENANT_SETTINGS_PENDING: dict[str, Any] = {
    **TENANT_ACTIVE,
    "updated_at": "2026-11-26T10:00:00+00:00",
    "settings": {
        "callback_urls": ["https://app.acme.example/auth/callback"],
        "logout_urls": [],
        "tags": {"team": "identity"},
        "identity_providers": {
            "acme-oidc": {
                "type": "OIDC",
                "issuer": "https://login.acme.example",
                "client_id": "acme-portal",
                "client_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tenants/acme/idp/acme-oidc/secret-AbCdEf",
                "scopes": ["openid", "email"],
                "attributes_request_method": "GET",
                "attribute_mapping": {"email": "email"},
            }
        },
    },
    "settings_status": "pending",
}
TENANT_SETTINGS_APPLIED: dict[str, Any] = {**TENANT_SETTINGS_PENDING, "settings_status": "applied"}
TENANT_PAGE: dict[str, Any] = {"items": [TENANT_ACTIVE], "next_cursor": "eyJhZnRlciI6ImFjbWUifQ"}
AUDIT_PAGE: dict[str, Any] = {
    "items": [
        {
            "id": 41,
            "tenant_id": "acme",
            "at": "2026-11-26T09:00:00+00:00",
            "actor": "key_7f3a9c",
            "action": "tenant.create",
            "outcome": "accepted",
            "detail": {"status": 202},
            "request_id": "5b0e3c1f9d2a4e6b8c7d0f1a2b3c4d5e",
        },
        {
            "id": 42,
            "tenant_id": "acme",
            "at": "2026-11-26T09:00:00.4+00:00",
            "actor": "worker:host-1:4242",
            "action": "step.user_pool",
            "outcome": "ok",
            "detail": {"operation": "provision", "duration_ms": 212.5},
            "request_id": None,
        },
    ],
    "next_cursor": None,
}
TIERS: list[dict[str, Any]] = [
    {
        "name": "standard",
        "description": "Business tenants: email sign-in, optional TOTP MFA, Essentials feature plan.",
        "settings": {"feature_plan": "ESSENTIALS", "mfa": "OPTIONAL", "groups": ["admins", "editors", "users"]},
    }
]
_KEY: dict[str, Any] = {
    "id": "key_7f3a9c",
    "name": "billing-backend",
    "prefix": "tpk_Zb3kQ0",
    "scopes": ["tenants:read", "tenants:write"],
    "status": "active",
    "created_at": "2026-11-26T08:00:00+00:00",
    "expires_at": None,
    "revoked_at": None,
    "last_used_at": "2026-11-26T09:00:00+00:00",
}
CREATE_KEY: dict[str, Any] = {"name": "billing-backend", "scopes": ["tenants:read", "tenants:write"]}
KEY_CREATED: dict[str, Any] = {**_KEY, "key": "tpk_Zb3kQ0pX<43 characters in all, shown once: store it now>"}
KEY: dict[str, Any] = _KEY
KEY_REVOKED: dict[str, Any] = {**_KEY, "status": "revoked", "revoked_at": "2026-11-26T11:00:00+00:00"}
KEY_LIST: dict[str, Any] = {"items": [_KEY]}
READY: dict[str, Any] = {"status": "ok", "checks": {"registry": "ok", "aws": "ok"}}
LIVE: dict[str, Any] = {"status": "ok"}
METRICS = (
    "# HELP tenants_by_status Tenants in the registry by status.\n"
    "# TYPE tenants_by_status gauge\n"
    'tenants_by_status{status="active"} 412.0\n'
    'tenants_by_status{status="provisioning"} 3.0\n'
    "# HELP tenants_jobs_waiting Jobs enqueued and not yet claimed by a worker.\n"
    "# TYPE tenants_jobs_waiting gauge\n"
    "tenants_jobs_waiting 0.0\n"
)

_PROBLEMS: dict[int, tuple[str, str, str, dict[str, Any]]] = {
    400: ("bad-request", "Bad request", "The body is not valid JSON.", {}),
    401: ("unauthorized", "Unauthorized", "Missing, unknown, revoked or expired API key.", {}),
    403: ("forbidden", "Forbidden", "This credential lacks the scope tenants:write.", {}),
    404: ("not-found", "Not found", "No tenant with id 'acme'.", {}),
    409: (
        "conflict",
        "Conflict",
        "Tenant 'acme' is provisioning; only a failed tenant can be retried.",
        {"tenant_status": "provisioning"},
    ),
    413: ("payload-too-large", "Request body too large", "The body exceeds 65536 bytes.", {}),
    415: (
        "unsupported-media-type",
        "Unsupported media type",
        "the request body has Content-Type 'text/plain': send it as application/json",
        {"code": "unsupported_media_type"},
    ),
    422: (
        "validation-error",
        "Invalid request",
        "tenant_id: must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
        {"errors": [{"field": "tenant_id", "message": "must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$"}]},
    ),
    429: ("rate-limited", "Too many requests", "This credential's rate limit is used up; retry after 1 s.", {}),
    431: ("headers-too-large", "Request header fields too large", "Request headers exceed 16384 bytes.", {}),
    503: ("unavailable", "Service unavailable", "The registry is unavailable; retry after 5 s.", {}),
}


def problem_example(status: int) -> Example:
    slug, title, detail, extra = _PROBLEMS[status]
    value = {"type": f"https://tenant-provisioner.dev/problems/{slug}", "title": title, "status": status, "detail": detail}
    return _Example(summary=title, value={**value, **extra})


def example(summary: str, value: Any) -> Example:
    return _Example(summary=summary, value=value)
