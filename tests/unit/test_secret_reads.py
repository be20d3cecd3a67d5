"""Which secrets the service reads back from Secrets Manager (issue 12 item 5), over the fakes:
only tenants' identity-provider secrets, never an app client's (README "How a secret travels",
SECURITY.md; deploy/iam-policy.json grants GetSecretValue on tenants/*/idp/* alone).
tests/integration/test_least_privilege.py checks the same of the requests sent to the emulator."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.naming import ResourceNames
from domain.tenant import SettingsStatus, TenantSpec, TenantStatus
from domain.tenant_settings import parse_settings
from domain.tiers import parse_tiers
from tests.unit.fakes import World, shipped_tiers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiers-full.toml"
NAMES = ResourceNames("tenants", "acme")
OIDC = {"type": "OIDC", "issuer": "https://login.acme.example", "client_id": "c", "client_secret": "oidc-1", "scopes": ["openid"]}


async def test_only_identity_provider_secrets_are_read_back_never_an_app_clients() -> None:
    world = World(tiers={**shipped_tiers(), **parse_tiers(tomllib.loads(EXAMPLE.read_text()))})
    parsed = parse_settings({"identity_providers": {"acme-oidc": OIDC}})
    spec = TenantSpec("acme", "enterprise", "Acme", settings=parsed.settings)
    await world.onboard(spec, parsed.secrets)
    assert await world.provision("acme") == TenantStatus.ACTIVE
    assert not (await world.onboard(spec, parsed.secrets)).changed  # the same POST again: compared
    await world.update("acme", {"tags": {"x": "1"}, "identity_providers": {"acme-oidc": {"client_secret": "oidc-2"}}})
    assert await world.apply_settings("acme") == SettingsStatus.APPLIED

    app_client_secrets = {s.arn for s in world.cloud.secrets.values() if "/app-client/" in s.name}
    assert len(app_client_secrets) == 2  # machine and mobile: confidential clients were made
    read = [call.kwargs["arn_or_name"] for call in world.cloud.calls_to("read_secret")]
    provider_secret = world.cloud.secret_named(NAMES.identity_provider_secret("acme-oidc"))
    assert provider_secret is not None
    # Read for CreateIdentityProvider, for the repeated POST's comparison, for UpdateIdentityProvider.
    assert len(read) >= 3 and set(read) == {provider_secret.arn}
    # The app client secrets were taken from Cognito (DescribeUserPoolClient), to be copied.
    assert len(world.cloud.calls_to("client_secret")) == 2
