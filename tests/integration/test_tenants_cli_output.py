"""What `tenantctl tenants` prints, against a stand-in service that answers fixed responses.

A small HTTP server on loopback serves the same bodies every time, so the JSON the CLI prints can
be pinned byte for byte (scripts parse it) and the tables checked as a pipe sees them: CliRunner's
stdout is not a terminal.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from service.cli import main
from tests.helpers import API_KEY

LONG_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:tenants/tenant-with-a-rather-long-identifier-0123456789"
    "/app-client/mobile-and-web-client-secret-AbCdEf"
)

TENANT: dict[str, Any] = {
    "tenant_id": "acme",
    "display_name": "Acme Café [b]Ltd[/b]",
    "tier": "premium",
    "status": "active",
    "admin_email": "admin@acme.example",
    "created_at": "2026-11-26T14:16:20.001234+00:00",
    "updated_at": "2026-11-26T14:16:29.098666+00:00",
    "last_error": None,
    "resources": {
        "account_id": "123456789012",
        "region": "us-east-1",
        "user_pool_id": "us-east-1_AbCdEfGhI",
        "user_pool_arn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI",
        "app_client_secret_arn": LONG_ARN,
        "app_clients": {"default": "1example23456789", "mobile": "2example34567890"},
    },
    "settings": {"callback_urls": ["https://acme.example/cb"], "tags": {"team": "identity"}, "identity_providers": {}},
    "settings_status": "applied",
}
OTHER: dict[str, Any] = {
    "tenant_id": "globex",
    "display_name": "Globex",
    "tier": "basic",
    "status": "failed",
    "admin_email": None,
    "created_at": "2026-11-26T15:00:00+00:00",
    "updated_at": "2026-11-26T15:00:01.5+00:00",
    "last_error": {"code": "LimitExceededException", "message": "too many pools", "step": "user_pool"},
    "resources": {"account_id": "123456789012", "region": "us-east-1"},
    "settings": {},
    "settings_status": "applied",
}

# The exact bytes `--output json` printed before the tables moved to rich: scripts parse them.
SHOW_JSON = """\
{
  "tenant_id": "acme",
  "display_name": "Acme Caf\\u00e9 [b]Ltd[/b]",
  "tier": "premium",
  "status": "active",
  "admin_email": "admin@acme.example",
  "created_at": "2026-11-26T14:16:20.001234+00:00",
  "updated_at": "2026-11-26T14:16:29.098666+00:00",
  "last_error": null,
  "resources": {
    "account_id": "123456789012",
    "region": "us-east-1",
    "user_pool_id": "us-east-1_AbCdEfGhI",
    "user_pool_arn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI",
    "app_client_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tenants/tenant-with-a-rather-long-identifier-0123456789/app-client/mobile-and-web-client-secret-AbCdEf",
    "app_clients": {
      "default": "1example23456789",
      "mobile": "2example34567890"
    }
  },
  "settings": {
    "callback_urls": [
      "https://acme.example/cb"
    ],
    "tags": {
      "team": "identity"
    },
    "identity_providers": {}
  },
  "settings_status": "applied"
}
"""
LIST_JSON = (
    "[\n"
    + "\n".join("  " + line for line in SHOW_JSON.rstrip("\n").splitlines()).rstrip()
    + ",\n"
    + """\
  {
    "tenant_id": "globex",
    "display_name": "Globex",
    "tier": "basic",
    "status": "failed",
    "admin_email": null,
    "created_at": "2026-11-26T15:00:00+00:00",
    "updated_at": "2026-11-26T15:00:01.5+00:00",
    "last_error": {
      "code": "LimitExceededException",
      "message": "too many pools",
      "step": "user_pool"
    },
    "resources": {
      "account_id": "123456789012",
      "region": "us-east-1"
    },
    "settings": {},
    "settings_status": "applied"
  }
]
"""
)


class Stub:
    """Fixed answers by path; ``events`` is the audit trail GET /v1/tenants/acme/events returns."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.tenant: dict[str, Any] = TENANT
        self.requests: list[str] = []
        self.deleted = False

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        self.requests.append(f"{method} {target}")
        url = urlsplit(target)
        requested = any(r.startswith(("POST", "DELETE")) for r in self.requests)
        query = parse_qs(url.query)
        if url.path == "/v1/tenants" and method == "GET":  # two pages, one tenant each
            if query.get("cursor") == ["page2"]:
                return 200, {"items": [OTHER], "next_cursor": None}
            return 200, {"items": [TENANT], "next_cursor": "page2"}
        if url.path == "/v1/tenants" and method == "POST":
            return 202, {**self.tenant, "status": "provisioning"}
        if url.path == "/v1/tenants/acme/events":
            # The run's events exist once the run was asked for.
            return 200, {"items": self.events if requested else [], "next_cursor": None}
        if url.path == "/v1/tenants/acme" and method == "DELETE":
            self.deleted = True
            return 202, {**self.tenant, "status": "deprovisioning"}
        if url.path == "/v1/tenants/acme" and not self.deleted:
            return 200, self.tenant
        return 404, {"title": "Not Found", "detail": "no such tenant", "status": 404}


@pytest.fixture
def stub() -> Iterator[tuple[str, Stub]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                status, body = 401, {"title": "Unauthorized", "status": 401}
            else:
                status, body = state.answer(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def tenantctl(url: str, *args: str, **env: str | None) -> Result:
    env = {"TENANTS_URL": url, "TENANTS_API_KEY": API_KEY, "COLUMNS": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None, **env}
    return CliRunner().invoke(main, ["tenants", *args], env=env, catch_exceptions=False)


ANSI = re.compile(r"\x1b\[")


def test_list_json_is_byte_stable(stub: tuple[str, Stub]) -> None:
    url, _ = stub
    result = tenantctl(url, "list", "--output", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == LIST_JSON.encode()


def test_show_json_is_byte_stable(stub: tuple[str, Stub]) -> None:
    url, _ = stub
    result = tenantctl(url, "show", "acme", "--output", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == SHOW_JSON.encode()


# A CI job often sets FORCE_COLOR for its own tools; a pipe still gets plain text.
FORCED_COLOR = {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "COLUMNS": "60"}


def test_show_table_keeps_every_value_whole_on_one_line_without_escape_codes(stub: tuple[str, Stub]) -> None:
    url, _ = stub
    result = tenantctl(url, "show", "acme", **FORCED_COLOR)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not ANSI.search(out), repr(out)
    lines = out.splitlines()
    assert [line for line in lines if LONG_ARN in line] == [f"app_client_secret_arn  {LONG_ARN}"]
    assert "\u2026" not in out and "..." not in out  # nothing ellipsized
    assert "display_name           Acme Café [b]Ltd[/b]" in lines  # printed as given, not as markup
    assert "app_clients            default=1example23456789" in lines
    assert any(line.strip() == "mobile=2example34567890" for line in lines)
    assert "callback_urls          https://acme.example/cb" in lines
    assert all(line == line.rstrip() for line in lines), repr(out)


def test_list_table_is_plain_aligned_text_with_a_count(stub: tuple[str, Stub]) -> None:
    url, _ = stub
    result = tenantctl(url, "list", **FORCED_COLOR)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not ANSI.search(out), repr(out)
    header, first, second, count = out.splitlines()
    assert header.split() == ["tenant_id", "tier", "status", "display_name", "updated_at", "last_error"]
    assert first.split() == ["acme", "premium", "active", "Acme", "Café", "[b]Ltd[/b]", TENANT["updated_at"], "-"]
    assert second.split() == ["globex", "basic", "failed", "Globex", OTHER["updated_at"], "LimitExceededException"]
    # Columns line up: every row's status starts where the header's does.
    assert first.index("active") == second.index("failed") == header.index("status")
    assert count == "2 tenant(s)"
    assert all(line == line.rstrip() for line in out.splitlines()), repr(out)


def step(name: str, duration_ms: float, outcome: str = "ok", event_id: int = 1) -> dict[str, Any]:
    return {
        "id": event_id,
        "tenant_id": "acme",
        "at": "2026-11-26T14:16:21+00:00",
        "actor": "worker:w1",
        "action": f"step.{name}",
        "outcome": outcome,
        "detail": {"operation": "deprovision", "duration_ms": duration_ms},
        "request_id": None,
    }


def test_delete_wait_prints_done_and_skip_step_lines_aligned(stub: tuple[str, Stub]) -> None:
    url, state = stub
    state.events = [
        step("delete_auth_role", 41.25, event_id=1),
        step("delete_hosted_ui_domain", 3.0, "skipped", event_id=2),
        step("delete_user_pool", 1612.7, event_id=3),
        {**step("x", 0, event_id=4), "action": "tenant.deleted", "detail": {"operation": "deprovision"}},
    ]
    result = tenantctl(url, "delete", "acme", "--wait", "--timeout", "10", **FORCED_COLOR)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not ANSI.search(out), repr(out)
    lines = [line for line in out.splitlines() if "delete_" in line]
    assert [line.split() for line in lines] == [
        ["done", "delete_auth_role", "41.2", "ms"],
        ["skip", "delete_hosted_ui_domain"],
        ["done", "delete_user_pool", "1612.7", "ms"],
    ]
    assert lines[0].index("delete_") == lines[1].index("delete_") == lines[2].index("delete_")
    assert lines[0].rindex("ms") == lines[2].rindex("ms")  # durations right-aligned
    assert all(line == line.rstrip() for line in out.splitlines()), repr(out)


def test_wait_with_json_output_keeps_step_lines_off_stdout(stub: tuple[str, Stub]) -> None:
    url, state = stub
    state.events = [step("user_pool", 612.74, event_id=1), step("hosted_ui_domain", 20.0, event_id=2)]
    result = tenantctl(url, "create", "acme", "--tier", "premium", "--display-name", "Acme", "--wait", "-o", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == SHOW_JSON.encode()
    assert [line.split() for line in result.stderr.splitlines() if "done" in line] == [
        ["done", "user_pool", "612.7", "ms"],
        ["done", "hosted_ui_domain", "20.0", "ms"],
    ]
