"""`tenantctl sweep` as an operator runs it: a subprocess against the emulator and a migrated
SQLite registry.

moto's state is process-global, so other tests' resources (many carrying the ownership tag) are
in the same emulator. Each test therefore uses its own resource prefix: the sweep only considers
resources named as *this* deployment names them, which is also what keeps two deployments sharing
one AWS account out of each other's way.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from adapters.aws.emulator import EmulatorServer
from adapters.registry.sql import SqlUnitOfWorkFactory, make_engine
from domain.naming import ResourceNames, ownership_tags
from domain.tenant import Cell, Tenant, TenantSpec, TenantStatus
from tests.helpers import boto
from tests.integration.test_cli import clean_env, run

SWEEP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorServer(port=0) as server:
        yield server.endpoint_url


@pytest.fixture
def registry_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "registry.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create_set(endpoint: str, names: ResourceNames, tags: dict[str, str]) -> dict[str, str]:
    """A user pool (deletion protection on, with a hosted-UI domain), an identity pool and an
    authenticated role with an inline policy, as the service would have made them."""
    idp, identity, iam = boto("cognito-idp", endpoint), boto("cognito-identity", endpoint), boto("iam", endpoint)
    pool_id = idp.create_user_pool(PoolName=names.user_pool, UserPoolTags=tags, DeletionProtection="ACTIVE")["UserPool"]["Id"]
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=names.hosted_ui_domain)
    identity_pool_id = identity.create_identity_pool(
        IdentityPoolName=names.identity_pool, AllowUnauthenticatedIdentities=False, IdentityPoolTags=tags
    )["IdentityPoolId"]
    role = names.role("auth")
    iam.create_role(RoleName=role, Path="/tenants/", AssumeRolePolicyDocument="{}", Tags=tags_list(tags))
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role, PolicyName=names.role_policy("auth"), PolicyDocument=json.dumps(document))
    return {"user_pool": pool_id, "identity_pool": identity_pool_id, "iam_role": role}


def exists(endpoint: str, kind: str, resource_id: str) -> bool:
    try:
        if kind == "user_pool":
            boto("cognito-idp", endpoint).describe_user_pool(UserPoolId=resource_id)
        elif kind == "identity_pool":
            boto("cognito-identity", endpoint).describe_identity_pool(IdentityPoolId=resource_id)
        else:
            boto("iam", endpoint).get_role(RoleName=resource_id)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in {"ResourceNotFoundException", "NoSuchEntity"}, exc
        return False
    return True


async def register_active(url: str, tenant_id: str, account_id: str, outputs: dict[str, Any]) -> None:
    engine = make_engine(url)
    try:
        now = datetime.now(UTC)
        tenant = Tenant(
            spec=TenantSpec(tenant_id=tenant_id, tier="basic", display_name="Kept"),
            cell=Cell(account_id=account_id, region="us-east-1"),
            status=TenantStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            outputs=outputs,
        )
        async with SqlUnitOfWorkFactory(engine)() as uow:
            await uow.tenants.add(tenant)
            await uow.commit()
    finally:
        await engine.dispose()


def sweep(workdir: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | str]:
    code, out, err, _ = run(["sweep", *args], workdir, env, timeout=SWEEP_TIMEOUT_S)
    assert "Traceback" not in err, err
    assert code in (0, 1), f"exit {code}\n{out}\n{err}"
    return code, (json.loads(out) if "json" in args else out)


async def test_sweep_lists_then_deletes_only_this_deployments_orphans(
    endpoint: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = f"sw{uuid.uuid4().hex[:8]}"
    ghost, kept = f"ghost-{uuid.uuid4().hex[:8]}", f"kept-{uuid.uuid4().hex[:8]}"
    account_id = boto("sts", endpoint).get_caller_identity()["Account"]
    orphans = create_set(endpoint, ResourceNames(prefix, ghost), ownership_tags(ghost))
    # A tenant the registry knows, whose resources are recorded: kept.
    kept_ids = create_set(endpoint, ResourceNames(prefix, kept), ownership_tags(kept))
    kept_role_arn = boto("iam", endpoint).get_role(RoleName=kept_ids["iam_role"])["Role"]["Arn"]
    await register_active(
        registry_url,
        kept,
        account_id,
        {
            "user_pool_id": kept_ids["user_pool"],
            "identity_pool_id": kept_ids["identity_pool"],
            "authenticated_role_name": kept_ids["iam_role"],
            "authenticated_role_arn": kept_role_arn,
        },
    )
    # Someone else's pool under the very name the service would give the unknown tenant, untagged.
    foreign = boto("cognito-idp", endpoint).create_user_pool(PoolName=ResourceNames(prefix, ghost).user_pool)["UserPool"]["Id"]

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = clean_env(
        TENANTS_DATABASE_URL=registry_url,
        TENANTS_AWS_ENDPOINT_URL=endpoint,
        TENANTS_VAR_DIR=str(workdir / "var"),
        TENANTS_RESOURCE_PREFIX=prefix,
        TENANTS_AWS_STRICT_PARAMS="true",
    )
    expected = {(kind, resource_id) for kind, resource_id in orphans.items()}

    code, report = sweep(workdir, env, "--output", "json")
    assert isinstance(report, dict)
    assert code == 1, report
    assert {(e["kind"], e["id"]) for e in report["entries"]} == expected
    assert {(e["tenant_id"], e["action"]) for e in report["entries"]} == {(ghost, "would delete")}
    assert (report["account_id"], report["applied"], report["orphans"], report["remaining"]) == (account_id, False, 3, 3)
    assert all(exists(endpoint, kind, resource_id) for kind, resource_id in expected)

    code, table = sweep(workdir, env, "--apply")
    assert code == 0, table
    assert isinstance(table, str)
    for kind, resource_id in expected:
        assert any(resource_id in line and kind in line and "deleted" in line for line in table.splitlines()), table
    assert "3 orphan(s) in account" in table and "3 deleted, 0 remaining" in table
    assert not any(exists(endpoint, kind, resource_id) for kind, resource_id in expected)

    code, report = sweep(workdir, env, "--output", "json")
    assert code == 0 and isinstance(report, dict)
    assert report["entries"] == [] and report["orphans"] == 0

    assert exists(endpoint, "user_pool", foreign)
    assert all(exists(endpoint, kind, resource_id) for kind, resource_id in kept_ids.items())
