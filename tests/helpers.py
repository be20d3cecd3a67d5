"""Small helpers shared by the integration and e2e tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import boto3

API_KEY = "tpk_test_" + "k" * 40


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


def pools_named(endpoint: str, name: str) -> list[dict[str, Any]]:
    client = boto("cognito-idp", endpoint)
    found, token = [], None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 60}
        if token:
            kwargs["NextToken"] = token
        page = client.list_user_pools(**kwargs)
        found += [p for p in page["UserPools"] if p["Name"] == name]
        token = page.get("NextToken")
        if not token:
            return found


def identity_pools_named(endpoint: str, name: str) -> list[dict[str, Any]]:
    client = boto("cognito-identity", endpoint)
    found, token = [], None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 60}
        if token:
            kwargs["NextToken"] = token
        page = client.list_identity_pools(**kwargs)
        found += [p for p in page["IdentityPools"] if p["IdentityPoolName"] == name]
        token = page.get("NextToken")
        if not token:
            return found


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
