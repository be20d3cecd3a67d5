"""What provisioning records of a tenant's AWS resources: ids, ARNs and names, by key.

Stored in the registry as the tenant's ``outputs`` (a JSON object); every step returns the keys it
sets, and a key set to ``None`` is removed (a teardown step clearing what it deleted). The keys are
declared here once, with their types, so a step cannot write a key nothing reads.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast


class TenantOutputs(TypedDict, total=False):
    # user pool
    user_pool_id: str | None
    user_pool_arn: str | None
    issuer_url: str | None
    # False only for a pool made before every pool had custom:tenant_id (adopted on a retry).
    tenant_id_attribute: bool | None
    # The display name the pool's message templates were last rendered with (settings update).
    messages_display_name: str | None
    resource_servers: list[str] | None
    groups: list[str] | None
    admin_username: str | None
    hosted_ui_domain_prefix: str | None
    hosted_ui_domain: str | None
    # app clients: the primary one, and the further ones by template name
    app_client_id: str | None
    primary_app_client: str | None
    extra_app_client_ids: dict[str, str] | None
    app_client_secret_arn: str | None
    app_client_secret_arns: dict[str, str] | None
    # the tenant's own identity providers, and those a PATCH removed (their secrets go too)
    identity_providers: list[str] | None
    removed_identity_providers: list[str] | None
    # identity pool and roles
    identity_pool_id: str | None
    authenticated_role_arn: str | None
    authenticated_role_name: str | None
    unauthenticated_role_arn: str | None
    unauthenticated_role_name: str | None
    extra_role_arns: dict[str, str] | None


OUTPUT_KEYS = frozenset(TenantOutputs.__annotations__)


def outputs_of(recorded: dict[str, Any]) -> TenantOutputs:
    """The registry's JSON object, typed. Unknown keys (a newer version's) are kept as they are."""
    return cast(TenantOutputs, dict(recorded))
