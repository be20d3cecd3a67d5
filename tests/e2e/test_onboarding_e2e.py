"""End to end: `tenantctl serve` as a subprocess, a client over HTTP, AWS through the emulator.

Onboards a tenant, signs a user in with SRP through the tenant's new app client, exchanges the
ID token in the tenant's new identity pool for AWS credentials, tears the tenant down and finds
nothing of it left in the emulator. The registry is PostgreSQL when TEST_DATABASE_URL is set
(as in CI), else SQLite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycognito.aws_srp import AWSSRP

from tests.helpers import (
    API_KEY,
    boto,
    free_port,
    identity_pools_named,
    pools_named,
    roles_with_prefix,
    tenantctl,
    unique_id,
)
from tests.integration.databases import throwaway_database

pytestmark = pytest.mark.e2e
PREFIX = "e2e"
PASSWORD = "Corr3ct-Horse-Battery!"




@pytest.fixture(scope="module")
async def registry_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        async with throwaway_database(server) as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('e2e') / 'registry.db'}"


@contextlib.contextmanager
def serving(
    tmp: Path, registry_url: str, emulator_endpoint: str, prefix: str, **extra_env: str
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`tenantctl db upgrade`, then `tenantctl serve` until it is ready: (its URL, its log file,
    the process). SIGTERM on the way out. ``extra_env``: more TENANTS_* settings."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTS_")}
    env.update(
        TENANTS_PORT=str(port),
        TENANTS_DATABASE_URL=registry_url,
        TENANTS_AWS_ENDPOINT_URL=emulator_endpoint,
        TENANTS_AWS_STRICT_PARAMS="true",
        TENANTS_BOOTSTRAP_API_KEY=API_KEY,
        TENANTS_RESOURCE_PREFIX=prefix,
        TENANTS_VAR_DIR=str(tmp / "var"),
        TENANTS_POLL_INTERVAL_S="0.1",
        **extra_env,
    )
    subprocess.run([tenantctl(), "db", "upgrade"], env=env, cwd=tmp, check=True, timeout=60, capture_output=True)
    log_path = tmp / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([tenantctl(), "serve"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, "service not ready in 30 s:\n" + log_path.read_text()
                time.sleep(0.1)
            yield url, log_path, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def service(registry_url: str, emulator_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serving(tmp_path_factory.mktemp("e2e-service"), registry_url, emulator_endpoint, PREFIX) as (url, log_path, process):
        yield {"url": url, "log": log_path, "process": process}


def test_onboard_sign_in_exchange_credentials_and_tear_down(service: dict[str, Any], emulator_endpoint: str) -> None:
    tenant_id = unique_id("e2e")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=service["url"], headers=headers, timeout=60) as http:
        created = http.post(
            "/v1/tenants",
            json={"tenant_id": tenant_id, "tier": "standard", "display_name": "E2E Corp", "admin_email": "admin@e2e.example"},
            headers={"Prefer": "wait=30"},
        )
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["status"] == "active", tenant
        res = tenant["resources"]
        assert http.get(f"/v1/tenants/{tenant_id}").json()["resources"] == res

        # A user of the tenant signs in with SRP through the tenant's own app client...
        idp = boto("cognito-idp", emulator_endpoint)
        email = f"user-{tenant_id}@e2e.example"
        idp.admin_create_user(
            UserPoolId=res["user_pool_id"],
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        idp.admin_set_user_password(UserPoolId=res["user_pool_id"], Username=email, Password=PASSWORD, Permanent=True)
        srp = AWSSRP(
            username=email, password=PASSWORD, pool_id=res["user_pool_id"], client_id=res["app_client_id"], client=idp
        )
        tokens = srp.authenticate_user()["AuthenticationResult"]
        id_token = tokens["IdToken"]
        claims = json.loads(_b64(id_token.split(".")[1]))
        assert claims["iss"] == res["issuer_url"]

        # ...and exchanges the ID token in the tenant's identity pool for AWS credentials.
        identity = boto("cognito-identity", emulator_endpoint)
        logins = {f"cognito-idp.us-east-1.amazonaws.com/{res['user_pool_id']}": id_token}
        identity_id = identity.get_id(IdentityPoolId=res["identity_pool_id"], Logins=logins)["IdentityId"]
        credentials = identity.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)["Credentials"]
        assert credentials["AccessKeyId"] and credentials["SecretKey"] and credentials["SessionToken"]

        deleted = http.delete(f"/v1/tenants/{tenant_id}", headers={"Prefer": "wait=30"})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == "deleted"

    # Nothing of the tenant is left in the emulator.
    assert pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert identity_pools_named(emulator_endpoint, f"{PREFIX}-{tenant_id}") == []
    assert roles_with_prefix(emulator_endpoint, f"{PREFIX}-{tenant_id}-") == []
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        idp.describe_user_pool(UserPoolId=res["user_pool_id"])

    # A premium tenant has a confidential app client: its secret goes to Secrets Manager only.
    premium_id = unique_id("e2e")
    with httpx.Client(base_url=service["url"], headers=headers, timeout=60) as http:
        premium = http.post(
            "/v1/tenants",
            json={"tenant_id": premium_id, "tier": "premium", "display_name": "E2E Premium"},
            headers={"Prefer": "wait=30"},
        )
        assert premium.status_code == 201 and premium.json()["status"] == "active", premium.text
        pres = premium.json()["resources"]
        client_secret = idp.describe_user_pool_client(UserPoolId=pres["user_pool_id"], ClientId=pres["app_client_id"])[
            "UserPoolClient"
        ]["ClientSecret"]
        secrets = boto("secretsmanager", emulator_endpoint)
        assert secrets.get_secret_value(SecretId=pres["app_client_secret_arn"])["SecretString"] == client_secret
        assert client_secret not in premium.text
        gone = http.delete(f"/v1/tenants/{premium_id}", headers={"Prefer": "wait=30"})
        assert gone.status_code == 200 and gone.json()["status"] == "deleted", gone.text
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId=pres["app_client_secret_arn"])

    # Logs: JSON lines with request id, tenant id, step and duration, and no secret of this run.
    text = service["log"].read_text()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    steps = [e for e in events if e.get("event") == "step_finished" and e.get("tenant_id") == tenant_id]
    assert {e["step"] for e in steps} >= {"user_pool", "app_client", "identity_pool", "auth_role", "identity_pool_roles"}
    assert all(isinstance(e["duration_ms"], float | int) for e in steps)
    assert any(e.get("event") == "request" and e.get("request_id") and e.get("tenant_id") == tenant_id for e in events)
    assert any(e.get("event") == "step_finished" and e.get("step") == "client_secret" for e in events)
    created_secrets = (API_KEY, PASSWORD, id_token, tokens["AccessToken"], tokens["RefreshToken"], credentials["SecretKey"])
    for secret in (*created_secrets, client_secret):
        assert secret not in text


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
