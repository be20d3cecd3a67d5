"""Small helpers shared by the integration and e2e tests."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3

API_KEY = "tpk_test_" + "k" * 40


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tenantctl() -> str:
    """The `tenantctl` of this environment (the venv running the tests)."""
    found = shutil.which("tenantctl", path=str(Path(sys.executable).parent))
    assert found, "tenantctl is not installed in this environment"
    return found


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def boto(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _listed(client: Any, operation: str, key: str) -> list[dict[str, Any]]:
    items, kwargs = [], {"MaxResults": 60}
    while True:
        page = getattr(client, operation)(**kwargs)
        items += page[key]
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def pools_named(endpoint: str, name: str) -> list[dict[str, Any]]:
    pools = _listed(boto("cognito-idp", endpoint), "list_user_pools", "UserPools")
    return [p for p in pools if p["Name"] == name]


def identity_pools_named(endpoint: str, name: str) -> list[dict[str, Any]]:
    pools = _listed(boto("cognito-identity", endpoint), "list_identity_pools", "IdentityPools")
    return [p for p in pools if p["IdentityPoolName"] == name]


def roles_with_prefix(endpoint: str, prefix: str) -> list[str]:
    client = boto("iam", endpoint)
    names = []
    for page in client.get_paginator("list_roles").paginate():
        names += [r["RoleName"] for r in page["Roles"] if r["RoleName"].startswith(prefix)]
    return names


async def wait_status(client: Any, tenant_id: str, statuses: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/v1/tenants/{tenant_id}")
        body = response.json()
        if body.get("status") in statuses or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)
