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

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        self.requests.append(f"{method} {target}")
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path == "/v1/tenants" and method == "GET":  # two pages, one tenant each
            if query.get("cursor") == ["page2"]:
                return 200, {"items": [OTHER], "next_cursor": None}
            return 200, {"items": [TENANT], "next_cursor": "page2"}
        if url.path == "/v1/tenants" and method == "POST":
            return 202, {**self.tenant, "status": "provisioning"}
        if url.path == "/v1/tenants/acme/events":
            return 200, {"items": self.events, "next_cursor": None}
        if url.path == "/v1/tenants/acme" and method == "DELETE":
            return 202, {**self.tenant, "status": "deprovisioning"}
        if url.path == "/v1/tenants/acme":
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


def tenantctl(url: str, *args: str) -> Result:
    env = {"TENANTS_URL": url, "TENANTS_API_KEY": API_KEY, "COLUMNS": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    return CliRunner().invoke(main, ["tenants", *args], env=env, catch_exceptions=False)


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
