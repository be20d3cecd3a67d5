"""display_name over HTTP, on SQLite and PostgreSQL, against the emulator: control and format
characters and whitespace-only names are refused (422 naming the field) on POST and PATCH and
through the operator CLI, leaving nothing stored changed; surrounding whitespace is trimmed (and
a repeat that differs only in it is the same request); a name with <, & and " provisions, and
the user pool's email bodies hold it HTML-escaped while subjects and SMS hold it as it is."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.cli import main
from tests.helpers import API_KEY, boto, unique_id
from tests.integration.databases import throwaway_database
from tests.integration.test_api import AUTH, make_app, postgres_for_api  # noqa: F401 (fixture)
from tests.reliability.harness import Service

_TIER = """
description = "Messages in every Cognito field that carries the display name."
feature_plan = "ESSENTIALS"
deletion_protection = false
username_attributes = ["email"]
auto_verified_attributes = ["email"]
mfa = "OPTIONAL"
mfa_methods = ["TOTP", "SMS"]
groups = [{ name = "admins", description = "Tenant administrators", precedence = 0 }]
admin_group = "admins"

[tiers.@NAME@.sms]
sns_caller_arn = "arn:aws:iam::123456789012:role/service-role/CognitoSnsCaller"
mfa_message = "{{display_name}} sign-in code {####}"

[tiers.@NAME@.verification]
email_method = "@METHOD@"
email_subject = "Your {{display_name}} code"
email_message = "<p>Welcome to <b>{{display_name}}</b>.</p> @BODY@"
sms_message = "{{display_name}} code {####}"

[tiers.@NAME@.invitation]
email_subject = "Your {{display_name}} account"
email_message = "<p>Join <b>{{display_name}}</b></p>: {username} / {####}"
sms_message = "{{display_name}}: {username} / {####}"

[[tiers.@NAME@.authenticated_policy]]
Effect = "Allow"
Action = ["s3:GetObject"]
Resource = ["arn:{{partition}}:s3:::data/{{tenant_id}}/*"]
"""
TIERS_TOML = "\n".join(
    f"[tiers.{name}]" + _TIER.replace("@NAME@", name).replace("@METHOD@", method).replace("@BODY@", body)
    for name, method, body in (("msgs", "code", "Code {####}"), ("msglink", "link", "{##Confirm##}"))
)

# The reported case, then one of each kind a careful user checks: C0 and C1 controls, a bidi
# override and an isolate, zero-width characters, the line separator, and whitespace only.
REFUSED = [
    "a\u0000b<script>",
    "Acme\u0007",
    "\u202eemca",
    "Acme\u2066x\u2069",
    "Ac\u200bme",
    "Acme\u2028",
    "Acme\u0085",
    "Acme\ncorp",
    "\tAcme",
    " ",
    "   \u3000 ",
]
IDS = ["nul", "bel", "rlo", "isolate", "zwsp", "line-sep", "nel", "newline", "tab", "space", "spaces"]


@pytest.fixture(scope="module")
async def client(
    postgres_for_api: str | None, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str  # noqa: F811
) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("display-name")
    tiers = tmp / "tiers.toml"
    tiers.write_text(TIERS_TOML)
    async with contextlib.AsyncExitStack() as stack:
        if postgres_for_api is None:
            url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
        else:
            url = await stack.enter_async_context(throwaway_database(postgres_for_api))
        await upgrade(url)
        async with AsyncTestClient(make_app(tmp, emulator_endpoint, url, tiers_file=tiers)) as c:
            c.headers.update(AUTH)
            yield c


def body(tenant_id: str, display_name: str, tier: str = "msgs") -> dict[str, Any]:
    return {"tenant_id": tenant_id, "tier": tier, "display_name": display_name}


def assert_names_display_name(response: Any) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["display_name"], problem
    assert "display_name" in problem["detail"]


async def onboard(client: Any, display_name: str = "Acme", tier: str = "msgs") -> dict[str, Any]:
    tenant_id = unique_id("dn")
    response = await client.post("/v1/tenants", json=body(tenant_id, display_name, tier), headers={"Prefer": "wait=60"})
    tenant = response.json()
    assert response.status_code == 201 and tenant["status"] == "active", tenant
    return tenant


def pool(endpoint: str, tenant: dict[str, Any]) -> dict[str, Any]:
    return boto("cognito-idp", endpoint).describe_user_pool(UserPoolId=tenant["resources"]["user_pool_id"])["UserPool"]


@pytest.mark.parametrize("name", REFUSED, ids=IDS)
async def test_post_refuses_control_characters_and_blank_names(client: Any, name: str) -> None:
    tenant_id = unique_id("dn")
    response = await client.post("/v1/tenants", json=body(tenant_id, name))
    assert_names_display_name(response)
    assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 404
    listed = (await client.get("/v1/tenants", params={"limit": 200})).json()
    assert tenant_id not in {t["tenant_id"] for t in listed["items"]}


async def test_post_trims_and_a_repeat_differing_only_in_whitespace_is_the_same_request(client: Any) -> None:
    tenant_id = unique_id("dn")
    first = await client.post("/v1/tenants", json=body(tenant_id, "  Acme  Corp\u00a0"))
    assert first.status_code == 202, first.text
    assert first.json()["display_name"] == "Acme  Corp"
    for again in ("Acme  Corp", " Acme  Corp "):
        repeat = await client.post("/v1/tenants", json=body(tenant_id, again))
        assert repeat.status_code == 200, repeat.text
        assert repeat.json()["display_name"] == "Acme  Corp"
    other = await client.post("/v1/tenants", json=body(tenant_id, "Acme Corp"))
    assert other.status_code == 409, other.text
    assert (await client.get(f"/v1/tenants/{tenant_id}")).json()["display_name"] == "Acme  Corp"


async def test_patch_refuses_bad_names_and_leaves_the_tenant_as_it_was(client: Any) -> None:
    tenant = await onboard(client)
    path = f"/v1/tenants/{tenant['tenant_id']}"
    before = (await client.get(path)).json()
    for name in REFUSED:
        response = await client.patch(path, json={"display_name": name})
        assert_names_display_name(response)
    after = (await client.get(path)).json()
    assert after == before  # same name, settings_status, updated_at: nothing stored changed


async def test_patch_trims_the_new_name(client: Any, emulator_endpoint: str) -> None:
    tenant = await onboard(client)
    path = f"/v1/tenants/{tenant['tenant_id']}"
    response = await client.patch(path, json={"display_name": "  Globex & Co  "}, headers={"Prefer": "wait=60"})
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "Globex & Co"
    assert response.json()["settings_status"] == "applied"
    described = pool(emulator_endpoint, tenant)
    assert described["VerificationMessageTemplate"]["EmailSubject"] == "Your Globex & Co code"
    assert "<b>Globex &amp; Co</b>" in described["VerificationMessageTemplate"]["EmailMessage"]


NAME = 'Tom & Jerry\'s "<Cheese>"'


@pytest.mark.parametrize("tier", ["msgs", "msglink"])
async def test_a_name_with_html_characters_is_escaped_in_email_bodies_only(client: Any, emulator_endpoint: str, tier: str) -> None:
    tenant = await onboard(client, NAME, tier)
    assert tenant["display_name"] == NAME
    escaped = html.escape(NAME)
    assert escaped == "Tom &amp; Jerry&#x27;s &quot;&lt;Cheese&gt;&quot;"
    described = pool(emulator_endpoint, tenant)
    verification = described["VerificationMessageTemplate"]
    invite = described["AdminCreateUserConfig"]["InviteMessageTemplate"]
    link = tier == "msglink"
    email_body = verification["EmailMessageByLink" if link else "EmailMessage"]
    assert email_body.startswith(f"<p>Welcome to <b>{escaped}</b>.</p> ")
    assert invite["EmailMessage"] == f"<p>Join <b>{escaped}</b></p>: {{username}} / {{####}}"
    assert verification["EmailSubjectByLink" if link else "EmailSubject"] == f"Your {NAME} code"
    assert invite["EmailSubject"] == f"Your {NAME} account"
    assert verification["SmsMessage"] == f"{NAME} code {{####}}"
    assert invite["SMSMessage"] == f"{NAME}: {{username}} / {{####}}"
    assert described["SmsAuthenticationMessage"] == f"{NAME} sign-in code {{####}}"


# -- the operator CLI, which goes through the API -----------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("display-name-cli")
    url = f"sqlite+aiosqlite:///{workdir / 'registry.db'}"
    asyncio.run(upgrade(url))
    running = Service(url, emulator_endpoint, workdir).start()
    try:
        yield running
    finally:
        running.stop()


def tenantctl(service: Service, *args: str) -> Any:
    env = {"TENANTS_URL": service.url, "TENANTS_API_KEY": API_KEY}
    return CliRunner().invoke(main, ["tenants", *args], env=env, catch_exceptions=False)


@pytest.mark.e2e
def test_cli_create_and_update_refuse_a_bad_name(service: Service) -> None:
    tenant_id = unique_id("dn")
    refused = tenantctl(service, "create", tenant_id, "--tier", "basic", "--display-name", "a\u0000b<script>")
    assert refused.exit_code != 0
    assert "display_name" in refused.output and "HTTP 422" in refused.output
    blank = tenantctl(service, "create", tenant_id, "--tier", "basic", "--display-name", "   ")
    assert blank.exit_code != 0 and "display_name" in blank.output
    with service.client() as http:
        assert http.get(f"/v1/tenants/{tenant_id}").status_code == 404

    created = tenantctl(service, "create", tenant_id, "--tier", "basic", "--display-name", " CLI Co ", "--wait", "--timeout", "60")
    assert created.exit_code == 0, created.output
    bad_update = tenantctl(service, "update", tenant_id, "--display-name", "CLI\u202eCo")
    assert bad_update.exit_code != 0 and "display_name" in bad_update.output
    with service.client() as http:
        assert http.get(f"/v1/tenants/{tenant_id}").json()["display_name"] == "CLI Co"
