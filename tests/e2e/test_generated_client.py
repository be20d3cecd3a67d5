"""End to end through the generated Python client (`make client`, README "Python client").

Generates the client fresh from openapi/openapi.json with openapi-python-client (offline: it reads
only the local document), imports it, and onboards, reads, lists and tears down a tenant against
`tenantctl serve` running as a subprocess, using nothing but the generated client.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adapters.registry.migrate import upgrade
from tests.helpers import API_KEY, unique_id
from tests.reliability.harness import Service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "tenant_provisioner_client"


def generate(output: Path) -> None:
    """The command of `make client` (Makefile), writing the package to ``output``/PACKAGE."""
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "openapi-python-client"), "generate",
            "--path", str(ROOT / "openapi" / "openapi.json"),
            "--config", str(ROOT / "openapi" / "client-config.yaml"),
            "--meta", "none", "--overwrite",
            "--output-path", str(output / PACKAGE),
        ],
        check=True, timeout=120, capture_output=True, cwd=output,
        # The generator formats its output with ruff (a dependency of it) when ruff is on PATH.
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ModuleType]]:
    output = tmp_path_factory.mktemp("generated-client")
    generate(output)
    assert (output / PACKAGE / "client.py").is_file()
    sys.path.insert(0, str(output))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
async def registry(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('client-registry') / 'registry.db'}"
    await upgrade(url)
    yield url


@pytest.fixture(scope="module")
def service(registry: str, emulator_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(database_url=registry, aws_endpoint=emulator_endpoint, workdir=tmp_path_factory.mktemp("client-svc"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def until(read: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 25.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")
        time.sleep(0.1)


def test_the_generated_client_onboards_reads_lists_and_tears_down_a_tenant(
    generated: Callable[[str], ModuleType], service: Service
) -> None:
    package = generated("")
    models = generated("models")
    create = generated("api.tenants.v1_tenants_create")
    get_tenant = generated("api.tenants.v1_tenants_tenant_id_get_tenant")
    list_tenants = generated("api.tenants.v1_tenants_list_tenants")
    delete_tenant = generated("api.tenants.v1_tenants_tenant_id_delete_tenant")
    tenant_id = unique_id("cli")

    with package.AuthenticatedClient(base_url=service.url, token=API_KEY, raise_on_unexpected_status=True) as client:
        body = models.CreateTenant(tenant_id=tenant_id, display_name="Client Co", tier="basic")
        created = create.sync_detailed(client=client, body=body)
        assert created.status_code == 202, created.content
        assert isinstance(created.parsed, models.TenantOut)
        assert created.parsed.tenant_id == tenant_id
        assert created.parsed.status == "provisioning"

        tenant = until(
            lambda: get_tenant.sync(tenant_id, client=client),
            lambda t: isinstance(t, models.TenantOut) and t.status != "provisioning",
            "the tenant to finish provisioning",
        )
        assert tenant.status == "active", tenant.last_error
        assert tenant.tier == "basic"
        assert tenant.resources.user_pool_id
        assert tenant.resources.app_client_id
        assert tenant.resources.identity_pool_id
        assert tenant.last_error is None

        page = list_tenants.sync(client=client, status=models.V1TenantsListTenantsStatus.ACTIVE, tier="basic")
        assert isinstance(page, models.TenantPage)
        listed = [t for t in page.items if t.tenant_id == tenant_id]
        assert len(listed) == 1 and listed[0].status == "active"
        assert listed[0].resources.user_pool_id == tenant.resources.user_pool_id

        # Prefer is a declared header, so the generated client takes it: the call waits for the teardown.
        deleting = delete_tenant.sync_detailed(tenant_id, client=client, prefer="wait=60")
        assert deleting.status_code == 200, deleting.content
        assert deleting.headers["Preference-Applied"] == "wait=60"
        assert isinstance(deleting.parsed, models.TenantOut)
        assert deleting.parsed.status == "deleted", deleting.parsed.last_error
        assert get_tenant.sync(tenant_id, client=client).status == "deleted"

        missing = get_tenant.sync("no-such-tenant", client=client)
        assert isinstance(missing, models.Problem)
        assert missing.status == 404
