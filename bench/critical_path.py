"""Onboarding a premium tenant vs the floor: the chain of dependent AWS calls made directly.

With the emulator adding L ms to every call (``tenantctl emulator --latency-ms L``, default 100):

- floor: CreateUserPool -> CreateUserPoolClient -> CreateIdentityPool -> CreateRole ->
  PutRolePolicy -> SetIdentityPoolRoles, made with boto3 one after another (each needs the one
  before), N times; the median. The requests are the service's own for a premium tenant (its
  request builders, names, tags, policies), so the emulator's cost per call is the same in both;
- API: ``POST /v1/tenants`` of a premium tenant with ``Prefer: wait=60`` against ``tenantctl
  serve`` (SQLite registry, in-process worker), until it answers ``active``; the median of N;
- one step at a time: the same with ``TENANTS_PLAN_CONCURRENCY=1`` (a second service).

The three are measured in turn, run after run, against one emulator.

Prints the three medians and the ratios to the floor (target: API <= 1.15 x floor). Exits
non-zero only on a crash, never on a missed target. Usage:

    .venv/bin/python bench/critical_path.py [--runs N] [--latency-ms L]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from adapters.aws.cognito_requests import app_client_request, user_pool_request  # noqa: E402
from domain.naming import ResourceNames, ownership_tags  # noqa: E402
from domain.policies import render_role_policy, trust_policy  # noqa: E402
from domain.tiers import template_tags  # noqa: E402
from service.settings import DEFAULT_TIERS_FILE  # noqa: E402
from service.tiers_file import load_tiers  # noqa: E402

TARGET = 1.15
REGION = "us-east-1"


def _clients(url: str) -> dict[str, Any]:
    config = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=60)
    return {
        service: boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )
        for service in ("cognito-idp", "cognito-identity", "iam")
    }


TEMPLATE = load_tiers(DEFAULT_TIERS_FILE)["premium"]


def floor_once(c: dict[str, Any]) -> float:
    """The six dependent calls, with the very requests the service sends for a premium tenant
    (its own request builders, names, tags and policies), one after another."""
    tenant_id = f"floor-{uuid.uuid4().hex[:10]}"
    names = ResourceNames("floor", tenant_id)
    tags = template_tags(TEMPLATE, ownership_tags(tenant_id), {})
    started = time.perf_counter()
    pool = c["cognito-idp"].create_user_pool(
        **user_pool_request(name=names.user_pool, template=TEMPLATE, tags=tags, display_name="Bench", tenant_id=tenant_id)
    )["UserPool"]
    client_id = c["cognito-idp"].create_user_pool_client(
        **app_client_request(pool_id=pool["Id"], name=names.app_client, template=TEMPLATE)
    )["UserPoolClient"]["ClientId"]
    identity_pool_id = c["cognito-identity"].create_identity_pool(
        IdentityPoolName=names.identity_pool,
        AllowUnauthenticatedIdentities=TEMPLATE.allow_guest_identities,
        AllowClassicFlow=False,
        CognitoIdentityProviders=[
            {"ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}", "ClientId": client_id, "ServerSideTokenCheck": True}
        ],
        IdentityPoolTags=tags,
    )["IdentityPoolId"]
    role = c["iam"].create_role(
        RoleName=names.role("auth"),
        Path="/tenants/",
        AssumeRolePolicyDocument=json.dumps(trust_policy(identity_pool_id, authenticated=True)),
        MaxSessionDuration=3600,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        Description=f"authenticated identities of tenant {tenant_id}",
    )["Role"]
    values = {
        "tenant_id": tenant_id, "partition": "aws", "region": REGION, "account_id": role["Arn"].split(":")[4],
        "user_pool_id": pool["Id"], "user_pool_arn": pool["Arn"], "identity_pool_id": identity_pool_id,
    }
    c["iam"].put_role_policy(
        RoleName=role["RoleName"],
        PolicyName=names.role_policy("auth"),
        PolicyDocument=json.dumps(render_role_policy(TEMPLATE.authenticated_policy, values)),
    )
    c["cognito-identity"].set_identity_pool_roles(IdentityPoolId=identity_pool_id, Roles={"authenticated": role["Arn"]})
    return time.perf_counter() - started


def onboard_once(client: httpx.Client) -> float:
    tenant_id = f"cp-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    response = client.post(
        "/v1/tenants",
        json={"tenant_id": tenant_id, "tier": "premium", "display_name": "Bench"},
        headers={"Prefer": "wait=60"},
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201 or response.json().get("status") != "active":
        raise RuntimeError(f"onboarding {tenant_id} did not end active: {response.status_code} {response.text[:500]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()

    floor: list[float] = []
    api: list[float] = []
    sequential: list[float] = []
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(_common.emulator(latency_ms=args.latency_ms))
        concurrent_svc = stack.enter_context(_common.service(emu.url))
        sequential_svc = stack.enter_context(_common.service(emu.url, env={"TENANTS_PLAN_CONCURRENCY": "1"}))
        aws = _clients(emu.url)
        http = [
            stack.enter_context(httpx.Client(base_url=svc.url, headers=svc.headers, timeout=120))
            for svc in (concurrent_svc, sequential_svc)
        ]
        # Warm-up (lazy imports, connections), then the three interleaved, so that whatever else
        # the machine does weighs on all three alike.
        floor_once(aws), onboard_once(http[0]), onboard_once(http[1])
        for _ in range(args.runs):
            floor.append(floor_once(aws))
            api.append(onboard_once(http[0]))
            sequential.append(onboard_once(http[1]))

    f, a, s = (_common.median(v) for v in (floor, api, sequential))
    print(f"critical path, premium tier, emulator latency {args.latency_ms:.0f} ms per call, {args.runs} runs each (medians)")
    print(f"  floor (6 dependent calls, boto3, one after another): {f * 1000:.0f} ms  (min {min(floor) * 1000:.0f}, max {max(floor) * 1000:.0f})")
    print(f"  API onboarding (POST, Prefer: wait):                 {a * 1000:.0f} ms  (min {min(api) * 1000:.0f}, max {max(api) * 1000:.0f})")
    print(f"  API, plan one step at a time (PLAN_CONCURRENCY=1):   {s * 1000:.0f} ms  (min {min(sequential) * 1000:.0f}, max {max(sequential) * 1000:.0f})")
    print("  " + _common.ratio_line("API / floor", a / f, TARGET, "x"))
    print(f"  sequential / floor: {s / f:.2f}x; sequential / API: {s / a:.2f}x")


if __name__ == "__main__":
    main()
