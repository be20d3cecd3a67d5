"""The embedded default across restarts: `tenantctl serve` with its own emulator and a SQLite
registry under var/, stopped (SIGTERM, or SIGKILL) and started again, as `make run` is.

The registry survives a restart; so must the emulated AWS resources it points at, or the
service would report `active` tenants whose pools are gone (issue 18, item 3). And if the
emulator's state file is lost anyway, /health/ready must say so rather than answer ok.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import API_KEY, free_port, tenantctl

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {API_KEY}"}




@contextlib.contextmanager
def embedded(tmp: Path, *, kill: bool = False) -> Iterator[str]:
    """`tenantctl db upgrade` and `tenantctl serve` on the embedded defaults (SQLite and the
    embedded emulator under tmp/var); SIGTERM (or SIGKILL) on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTS_")}
    env.update(
        TENANTS_PORT=str(port),
        TENANTS_VAR_DIR=str(tmp / "var"),
        TENANTS_BOOTSTRAP_API_KEY=API_KEY,
        TENANTS_AWS_STRICT_PARAMS="true",
        TENANTS_POLL_INTERVAL_S="0.1",
        # A SIGKILLed worker's lease (on a job it had just finished) expires quickly.
        TENANTS_LEASE_SECONDS="5",
    )
    subprocess.run([tenantctl(), "db", "upgrade"], env=env, cwd=tmp, check=True, timeout=60, capture_output=True)
    with (tmp / "service.log").open("ab") as log:
        process = subprocess.Popen([tenantctl(), "serve"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp / "service.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "tenantctl serve did not come up"
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        process.wait(timeout=30)


def _onboard(url: str, tenant_id: str) -> dict:
    body = {"tenant_id": tenant_id, "tier": "standard", "display_name": "Acme Corp"}
    r = httpx.post(f"{url}/v1/tenants", json=body, headers={**AUTH, "Prefer": "wait=30"}, timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    return r.json()


def _patch_applies(url: str, tenant_id: str, name: str) -> dict:
    r = httpx.patch(
        f"{url}/v1/tenants/{tenant_id}",
        json={"display_name": name},
        headers={**AUTH, "Prefer": "wait=30"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_a_restart_keeps_the_emulated_resources_the_registry_points_at(tmp_path: Path, kill: bool) -> None:
    with embedded(tmp_path, kill=kill) as url:
        before = _onboard(url, "acme")
    assert (tmp_path / "var" / "emulator-state.pickle").stat().st_mode & 0o777 == 0o600

    with embedded(tmp_path) as url:
        ready = httpx.get(f"{url}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        after = httpx.get(f"{url}/v1/tenants/acme", headers=AUTH, timeout=10).json()
        assert after["resources"] == before["resources"]
        # Today's failure: the PATCH's UpdateUserPool met ResourceNotFoundException.
        patched = _patch_applies(url, "acme", "Acme Inc")
        assert patched["settings_status"] == "applied", patched
        # Teardown finds every resource too, and a new tenant still works beside it.
        _onboard(url, "globex")
        r = httpx.delete(f"{url}/v1/tenants/acme", headers={**AUTH, "Prefer": "wait=30"}, timeout=60)
        assert r.status_code == 200 and r.json()["status"] == "deleted", r.text


def test_a_lost_emulator_state_is_reported_not_hidden(tmp_path: Path) -> None:
    with embedded(tmp_path) as url:
        _onboard(url, "initech")
    (tmp_path / "var" / "emulator-state.pickle").unlink()

    with embedded(tmp_path) as url:
        ready = httpx.get(f"{url}/health/ready", timeout=10)
        assert ready.status_code == 503, ready.text
        assert "initech" in ready.json()["detail"] and "emulator" in ready.json()["detail"]
    log = (tmp_path / "service.log").read_text()
    assert "emulator_state_mismatch" in log
