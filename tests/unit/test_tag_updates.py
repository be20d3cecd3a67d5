"""A PATCH of a tenant's tags reaches every resource created with them (issue 12 item 3), over the
fakes: the example ``enterprise`` tier (docs/examples/tiers-full.toml) has every taggable kind,
extra roles of its role mapping included. tests/integration/test_tag_updates.py does the same
over the emulator."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.naming import ResourceNames, ownership_tags
from domain.tenant import SettingsStatus, TenantSpec, TenantStatus
from domain.tenant_settings import parse_settings
from domain.tiers import parse_tiers
from tests.unit.fakes import World, shipped_tiers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
NAMES = ResourceNames("tenants", "acme")
SETTINGS = {
    "tags": {"team": "alpha", "drop-me": "soon"},
    "identity_providers": {
        "acme-oidc": {
            "type": "OIDC",
            "issuer": "https://login.acme.example",
            "client_id": "acme-client",
            "client_secret": "oidc-secret-1",
            "scopes": ["openid", "email"],
        },
        "Google": {"type": "Google", "client_id": "g-id", "client_secret": "google-secret-1", "scopes": ["openid"]},
    },
}


async def test_a_tag_patch_retags_every_resource_created_with_the_tenants_tags() -> None:
    world = World(tiers={**shipped_tiers(), **parse_tiers(tomllib.loads(EXAMPLE.read_text()))})
    parsed = parse_settings(SETTINGS)
    await world.onboard(TenantSpec("acme", "enterprise", "Acme", settings=parsed.settings), parsed.secrets)
    assert await world.provision("acme") == TenantStatus.ACTIVE
    created = world.cloud.tagged_resources()
    # Every kind: the pool, the identity pool, auth/unauth/two extra roles, two app client
    # secrets (machine, mobile) and two identity-provider secrets.
    assert sorted(created) == sorted(
        [
            f"user_pools {NAMES.user_pool}",
            f"identity_pools {NAMES.identity_pool}",
            *(f"roles {name}" for name in (NAMES.role("auth"), NAMES.role("unauth"))),
            *(f"roles {NAMES.extra_role(role)}" for role in ("admins", "editors")),
            *(f"secrets {NAMES.named_client_secret(client, primary=False)}" for client in ("machine", "mobile")),
            *(f"secrets {NAMES.identity_provider_secret(p)}" for p in ("acme-oidc", "Google")),
        ]
    )
    template = {"cost-center": "identity", "environment": "production"}
    assert all(tags == {**template, "team": "alpha", "drop-me": "soon", **ownership_tags("acme")} for tags in created.values())

    await world.update("acme", {"tags": {"team": "beta", "drop-me": None, "added": "yes", "environment": "staging"}})
    assert await world.apply_settings("acme") == SettingsStatus.APPLIED

    wanted = {"cost-center": "identity", "environment": "staging", "team": "beta", "added": "yes", **ownership_tags("acme")}
    after = world.cloud.tagged_resources()
    assert sorted(after) == sorted(created)
    assert {name: tags for name, tags in after.items() if tags != wanted} == {}
