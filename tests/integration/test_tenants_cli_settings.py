"""`tenantctl tenants create|update` with the per-tenant settings, against a running service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import unique_id
from tests.integration.test_tenants_cli import api_tenant, service, tenantctl  # noqa: F401 (fixture)
from tests.reliability.harness import Service

pytestmark = pytest.mark.e2e


def test_create_with_tags_and_a_provider_file_then_update(service: Service, tmp_path: Path) -> None:  # noqa: F811
    providers = tmp_path / "idps.json"
    secret = "cli-file-secret-31a"
    providers.write_text(
        json.dumps(
            {"cli-oidc": {"type": "OIDC", "issuer": "https://idp.cli.example", "client_id": "c", "client_secret": secret, "scopes": ["openid"]}}
        )
    )
    tenant_id = unique_id("clis")
    created = tenantctl(
        service, "create", tenant_id, "--tier", "basic", "--display-name", "CLI Settings",
        "--tag", "team=identity", "--tag", "env=dev", "--identity-providers", str(providers), "--wait", "--timeout", "60",
    )
    assert created.exit_code == 0, created.output
    assert secret not in created.output
    settings = api_tenant(service, tenant_id)["settings"]
    assert settings["tags"] == {"team": "identity", "env": "dev"}
    assert settings["identity_providers"]["cli-oidc"]["client_secret_arn"]

    updated = tenantctl(
        service, "update", tenant_id, "--untag", "env", "--tag", "team=platform", "--remove-provider", "cli-oidc",
        "--display-name", "CLI Renamed", "--wait", "--output", "json",
    )
    assert updated.exit_code == 0, updated.output
    shown = json.loads(updated.stdout)
    assert shown["settings_status"] == "applied" and shown["display_name"] == "CLI Renamed"
    assert shown["settings"]["tags"] == {"team": "platform"} and shown["settings"]["identity_providers"] == {}

    refused = tenantctl(service, "update", tenant_id, "--callback-url", "https://app.cli.example/cb")
    assert refused.exit_code == 2, refused.output  # basic has no client with the code flow: 422
    assert "callback_urls" in refused.output
    bad = tenantctl(service, "create", unique_id("clis"), "--tier", "basic", "--display-name", "x", "--tag", "novalue")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
