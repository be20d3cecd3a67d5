"""`tenantctl tenants ...` as an operator runs it, against a real `tenantctl serve` over HTTP.

One service for the module (a migrated SQLite registry, the shared emulator as AWS). The commands
run in-process through click's CliRunner; the tenants they create are checked through the API.
The bulk deletes remove every active tenant, so they run last.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from adapters.registry.migrate import upgrade
from domain.naming import ResourceNames, ownership_tags
from service.cli import main
from tests.helpers import API_KEY, boto, unique_id
from tests.reliability.harness import PREFIX, Service, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("tenants-cli")
    url = f"sqlite+aiosqlite:///{workdir / 'registry.db'}"
    asyncio.run(upgrade(url))
    running = Service(url, emulator_endpoint, workdir).start()
    try:
        yield running
    finally:
        running.stop()


def tenantctl(service: Service, *args: str, key: str = API_KEY, input: str | None = None) -> Result:
    env = {"TENANTS_URL": service.url, "TENANTS_API_KEY": key}
    return CliRunner().invoke(main, ["tenants", *args], env=env, input=input, catch_exceptions=False)


def onboard(service: Service, tier: str = "basic") -> str:
    tenant_id = unique_id("cli")
    result = tenantctl(
        service, "create", tenant_id, "--tier", tier, "--display-name", "CLI Co", "--wait", "--timeout", "60"
    )
    assert result.exit_code == 0, result.output
    return tenant_id


def api_tenant(service: Service, tenant_id: str) -> dict[str, Any]:
    with service.client() as client:
        return client.get(f"/v1/tenants/{tenant_id}").json()


def test_create_wait_prints_each_step_and_ends_active(service: Service) -> None:
    tenant_id = unique_id("cli")
    result = tenantctl(
        service, "create", tenant_id, "--tier", "standard", "--display-name", "[b]Acme[/b]", "--wait", "--timeout", "60"
    )

    assert result.exit_code == 0, result.output
    step_lines = [line for line in result.stdout.splitlines() if line.strip().startswith("done")]
    assert any("user_pool" in line and line.rstrip().endswith("ms") for line in step_lines), result.stdout
    assert len(step_lines) >= 3, result.stdout
    assert api_tenant(service, tenant_id)["status"] == "active"
    assert "active" in result.stdout

    shown = tenantctl(service, "show", tenant_id, "--output", "json")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["tenant_id"] == tenant_id
    assert body["status"] == "active"
    assert body["resources"]["user_pool_id"]

    table = tenantctl(service, "show", tenant_id)
    assert table.exit_code == 0, table.output
    assert "[b]Acme[/b]" in table.stdout  # printed as given, not read as rich markup
    assert body["resources"]["user_pool_arn"] in table.stdout


def test_list_follows_every_page(service: Service) -> None:
    ids = {onboard(service), onboard(service)}

    table = tenantctl(service, "list", "--limit", "1")
    assert table.exit_code == 0, table.output
    assert all(tenant_id in table.stdout for tenant_id in ids)

    listed = tenantctl(service, "list", "--limit", "1", "--status", "active", "--tier", "basic", "-o", "json")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)
    assert ids <= {t["tenant_id"] for t in items}
    assert len(items) >= 2
    assert {t["status"] for t in items} == {"active"}


def test_retry_of_an_active_tenant_is_a_conflict(service: Service) -> None:
    tenant_id = onboard(service)
    result = tenantctl(service, "retry", tenant_id)
    assert result.exit_code == 4, result.output
    assert "Error:" in result.stderr


def test_unknown_tenant_is_not_found(service: Service) -> None:
    result = tenantctl(service, "show", unique_id("nobody"))
    assert result.exit_code == 3, result.output


def test_wrong_key_is_an_auth_error_and_is_never_printed(service: Service) -> None:
    wrong = "tpk_test_" + "w" * 40
    result = tenantctl(service, "list", key=wrong)
    assert result.exit_code == 5, result.output
    assert wrong not in result.output


def test_invalid_input_is_a_usage_error(service: Service) -> None:
    result = tenantctl(service, "create", unique_id("cli"), "--tier", "no-such-tier", "--display-name", "X")
    assert result.exit_code == 2, result.output
    assert tenantctl(service, "delete").exit_code == 2


def test_unreachable_service(service: Service) -> None:
    result = CliRunner().invoke(
        main, ["tenants", "list", "--url", f"http://127.0.0.1:{free_port()}"], env={"TENANTS_API_KEY": API_KEY}
    )
    assert result.exit_code == 6, result.output
    assert API_KEY not in result.output


def test_delete_wait_ends_deleted(service: Service) -> None:
    tenant_id = onboard(service)
    result = tenantctl(service, "delete", tenant_id, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert any(line.strip().startswith("done") for line in result.stdout.splitlines()), result.stdout
    assert api_tenant(service, tenant_id)["status"] == "deleted"


# Teardown steps of resources only some tiers have: basic has no hosted-UI domain, no app client
# secret and no guest (unauthenticated) role; premium has all three.
TIER_ONLY = ("delete_hosted_ui_domain", "delete_client_secret", "delete_unauth_role")


def step_verbs(stdout: str) -> dict[str, str]:
    """``{step: "done" | "skip" | "FAIL"}`` from the step lines `--wait` prints."""
    verbs: dict[str, str] = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("done", "skip", "FAIL"):
            assert words[1] not in verbs, stdout  # one line per step
            verbs[words[1]] = words[0]
    return verbs


def events_of(service: Service, tenant_id: str) -> list[dict[str, Any]]:
    with service.client() as client:
        return client.get(f"/v1/tenants/{tenant_id}/events", params={"limit": 200}).json()["items"]  # type: ignore[no-any-return]


def test_teardown_of_a_basic_tenant_skips_what_its_tier_never_had(service: Service) -> None:
    tenant_id = onboard(service, "basic")
    result = tenantctl(service, "delete", tenant_id, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output

    verbs = step_verbs(result.stdout)
    assert {name: verbs.get(name) for name in TIER_ONLY} == dict.fromkeys(TIER_ONLY, "skip"), result.stdout
    for name in ("delete_auth_role", "delete_identity_pool", "delete_user_pool"):
        assert verbs.get(name) == "done", result.stdout
    assert api_tenant(service, tenant_id)["status"] == "deleted"
    # The audit trail says the same: those steps are recorded skipped, not ok.
    outcomes = {e["action"]: e["outcome"] for e in events_of(service, tenant_id) if e["action"].startswith("step.delete_")}
    assert {name: outcomes[f"step.{name}"] for name in TIER_ONLY} == dict.fromkeys(TIER_ONLY, "skipped")
    assert outcomes["step.delete_user_pool"] == "ok"


def test_teardown_of_a_premium_tenant_deletes_its_domain_secret_and_guest_role(
    service: Service, emulator_endpoint: str
) -> None:
    tenant_id = onboard(service, "premium")
    resources = api_tenant(service, tenant_id)["resources"]
    assert resources.get("hosted_ui_domain") and resources.get("app_client_secret_arn"), resources
    result = tenantctl(service, "delete", tenant_id, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output

    verbs = step_verbs(result.stdout)
    assert {name: verbs.get(name) for name in TIER_ONLY} == dict.fromkeys(TIER_ONLY, "done"), result.stdout
    iam = boto("iam", emulator_endpoint)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=ResourceNames(PREFIX, tenant_id).role("unauth"))
    secrets = boto("secretsmanager", emulator_endpoint)
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId=resources["app_client_secret_arn"])


def test_teardown_still_deletes_a_guest_role_its_tier_never_makes(service: Service, emulator_endpoint: str) -> None:
    """A role of the tenant's name and tags (left by a run under an older template, say) is found
    by name and deleted: a step is only skipped when there is nothing of the tenant's to delete."""
    tenant_id = onboard(service, "basic")
    name = ResourceNames(PREFIX, tenant_id).role("unauth")
    iam = boto("iam", emulator_endpoint)
    iam.create_role(
        RoleName=name,
        Path="/tenants/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=[{"Key": k, "Value": v} for k, v in ownership_tags(tenant_id).items()],
    )
    result = tenantctl(service, "delete", tenant_id, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output

    verbs = step_verbs(result.stdout)
    assert verbs.get("delete_unauth_role") == "done", result.stdout
    assert (verbs.get("delete_hosted_ui_domain"), verbs.get("delete_client_secret")) == ("skip", "skip"), result.stdout
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=name)


def test_bulk_delete_answered_no_deletes_nothing(service: Service) -> None:
    tenant_id = onboard(service)
    result = tenantctl(service, "delete", "--status", "active", input="n\n")
    assert result.exit_code == 0, result.output
    assert tenant_id in result.stdout  # listed before the question
    assert "Nothing deleted" in result.output
    assert api_tenant(service, tenant_id)["status"] == "active"


def test_bulk_delete_with_yes_deletes_what_it_listed(service: Service) -> None:
    ids = {onboard(service), onboard(service)}
    listed = json.loads(tenantctl(service, "list", "--status", "active", "-o", "json").stdout)
    active = {t["tenant_id"] for t in listed}
    assert ids <= active

    result = tenantctl(service, "delete", "--status", "active", "--yes", "--wait", "--timeout", "60")

    assert result.exit_code == 0, result.output
    assert all(tenant_id in result.stdout for tenant_id in active)
    assert f"deleted {len(active)} of {len(active)} tenant(s), 0 failed" in result.output
    assert {api_tenant(service, t)["status"] for t in active} == {"deleted"}
    assert json.loads(tenantctl(service, "list", "--status", "active", "-o", "json").stdout) == []
