"""`tenantctl keys` as an operator runs it: a subprocess against a migrated SQLite registry, and the
keys it makes used against the API (in-process, on the same registry file).

The commands need nothing but the registry: the environment below points AWS at a closed port, so
a command that touched AWS would fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from service.apikeys import ALL_SCOPES
from service.app import create_app
from service.cli import main
from tests.helpers import unique_id
from tests.integration.test_cli import clean_env, free_port, run

KEY_RE = re.compile(r"tpk_[A-Za-z0-9_-]{43}")


class Registry:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.file = directory / "registry.db"
        self.url = f"sqlite+aiosqlite:///{self.file}"
        self.env = clean_env(
            TENANTS_DATABASE_URL=self.url,
            TENANTS_VAR_DIR=str(directory / "var"),
            TENANTS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        )

    def tenantctl(self, *args: str) -> tuple[int, str, str]:
        code, out, err, _ = run(["keys", *args], self.directory, self.env)
        assert "Traceback" not in err, err
        return code, out, err

    def create(self, *args: str) -> dict[str, Any]:
        code, out, err = self.tenantctl("create", *args, "--output", "json")
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    def listed(self) -> list[dict[str, Any]]:
        code, out, err = self.tenantctl("list", "--output", "json")
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    def stored_bytes(self) -> bytes:
        """The registry as it is on disk, write-ahead log included.

        Read by another process: closing a file descriptor of the database in this process would
        drop the POSIX locks the app's SQLite connections hold on it (fcntl locks are per process),
        and the next `tenantctl` to exit would then checkpoint and remove the WAL under the app.
        """
        files = sorted(str(p) for p in self.directory.glob("registry.db*"))
        return subprocess.run(["cat", *files], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def registry(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    directory = tmp_path_factory.mktemp("keys-cli")
    shutil.copyfile(sqlite_template, directory / "registry.db")
    return Registry(directory)


@pytest.fixture(scope="module")
async def api(registry: Registry, emulator_endpoint: str) -> AsyncIterator[Any]:
    app = create_app(
        database_url=registry.url, aws_endpoint_url=emulator_endpoint, worker_enabled=False, var_dir=registry.directory / "app"
    )
    async with AsyncTestClient(app) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_create_prints_a_working_key_once_and_stores_only_its_hash(registry: Registry, api: Any) -> None:
    name = unique_id("ci")
    code, out, err = registry.tenantctl("create", "--name", name, "--scope", "tenants:read", "--scope", "keys:admin")
    assert code == 0, err
    key = out.strip()
    assert KEY_RE.fullmatch(key), out  # stdout is the key alone: KEY=$(tenantctl keys create ...)
    assert key not in err
    said = re.search(rf"created (key_\w+) \({name}\), prefix (tpk_\S+), scopes tenants:read keys:admin, expires never", err)
    assert said, err
    key_id, prefix = said.groups()
    assert key.startswith(prefix) and len(prefix) < len(key) // 3

    # The key works, with exactly its scopes (keys:admin lets it read its own record).
    assert (await api.get("/v1/tiers", headers=bearer(key))).status_code == 200
    record = (await api.get(f"/v1/keys/{key_id}", headers=bearer(key))).json()
    assert (record["name"], record["prefix"], record["scopes"]) == (name, prefix, ["tenants:read", "keys:admin"])
    assert (await api.post("/v1/tenants", headers=bearer(key), json={})).status_code == 403

    stored = registry.stored_bytes()
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored
    assert key.encode() not in stored
    assert key[len(prefix) :].encode() not in stored  # nor the secret part on its own


async def test_list_shows_every_key_but_never_a_key_or_a_hash(registry: Registry) -> None:
    when = (datetime.now(UTC) + timedelta(days=400)).replace(microsecond=0)
    made = registry.create(
        "--name", unique_id("list"), "--scope", "tenants:write", "--scope", "tenants:delete", "--expires", when.isoformat()
    )
    assert datetime.fromisoformat(made["expires_at"]) == when
    secrets = [made["key"], hashlib.sha256(made["key"].encode()).hexdigest()]

    code, table, err = registry.tenantctl("list")
    assert code == 0, err
    header, *rows = table.splitlines()
    assert header.split() == [
        "id", "name", "prefix", "scopes", "status", "created_at", "expires_at", "revoked_at", "last_used_at"
    ]
    (row,) = [r for r in rows if r.startswith(made["id"] + " ")]
    assert row.split()[1:5] == [made["name"], made["prefix"], "tenants:write,tenants:delete", "active"]

    listed = {k["id"]: k for k in registry.listed()}
    assert listed[made["id"]] == {k: v for k, v in made.items() if k != "key"}
    assert len(rows) == len(listed) >= 1
    everything = table + err + json.dumps(list(listed.values()))
    for secret in secrets:
        assert secret not in everything
    assert "hash" not in everything


async def test_revoke_turns_the_key_away(registry: Registry, api: Any) -> None:
    made = registry.create("--name", unique_id("revoke"), "--scope", "tenants:read")
    assert (await api.get("/v1/tiers", headers=bearer(made["key"]))).status_code == 200

    code, _, err = registry.tenantctl("revoke", made["id"])
    assert code == 0, err
    assert f"revoked {made['id']}" in err
    # The app verified the key above and may trust it for TENANTS_API_KEY_CACHE_S more (its
    # revocation bound); let that entry fall due (test_keys_api.py checks the bound itself).
    cache = api.app.state.container.key_cache
    ttl_s, cache.ttl_s = cache.ttl_s, 0
    try:
        response = await api.get("/v1/tiers", headers=bearer(made["key"]))
    finally:
        cache.ttl_s = ttl_s
    assert response.status_code == 401
    assert made["key"] not in response.text

    code, _, err = registry.tenantctl("revoke", made["id"])  # again: nothing to do, not an error
    assert code == 0 and "already revoked" in err, err
    with closing(sqlite3.connect(registry.file)) as db:  # in-process SQLite shares the app's locks
        (revoked_at,) = db.execute("SELECT revoked_at FROM api_keys WHERE id = ?", (made["id"],)).fetchone()
    assert revoked_at is not None


def test_revoking_an_unknown_key_fails(registry: Registry) -> None:
    code, _, err = registry.tenantctl("revoke", "key_0000000000000000")
    assert code == 1
    assert "no API key with id 'key_0000000000000000'" in err


async def test_expires_in_the_future_gives_a_working_key_with_its_expiry(registry: Registry, api: Any) -> None:
    started = datetime.now(UTC)
    relative = registry.create("--name", unique_id("exp"), "--scope", "tenants:read", "--expires", "12h")
    expires_at = datetime.fromisoformat(relative["expires_at"])
    assert started + timedelta(hours=12) <= expires_at <= datetime.now(UTC) + timedelta(hours=12)
    assert relative["status"] == "active"
    assert (await api.get("/v1/tiers", headers=bearer(relative["key"]))).status_code == 200


# Refused before the registry is opened, so these run in-process (click's runner): milliseconds each.
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scope", "tenants:read", "--expires", "2020-01-01T00:00:00Z"], ["--expires", "not in the future"]),
        (["--scope", "tenants:read", "--expires", "0d"], ["--expires", "not a positive duration"]),
        (["--scope", "tenants:read", "--expires", "2030-01-01T00:00:00"], ["--expires", "no UTC offset"]),
        (["--scope", "tenants:read", "--expires", "soon"], ["--expires", "neither a duration"]),
        (["--scope", "tenants:admin"], ["--scope", "'tenants:admin'", *ALL_SCOPES]),
        (["--scope", "tenants:read", "--scope", "Tenants:Write"], ["--scope", "'Tenants:Write'", *ALL_SCOPES]),
        ([], ["--scope"]),
        (["--name", "", "--scope", "tenants:read"], ["--name"]),
    ],
    ids=["past", "zero", "naive", "gibberish", "unknown-scope", "scope-case", "no-scope", "empty-name"],
)
def test_create_refuses_bad_arguments_by_name_and_stores_nothing(
    registry: Registry, args: list[str], says: list[str]
) -> None:
    name = unique_id("refused")
    result = CliRunner().invoke(main, ["keys", "create", "--name", name, *args], env=registry.env)
    assert result.exit_code == 2, result.output
    for words in says:
        assert words in result.output, result.output
    assert not KEY_RE.search(result.output)
    with closing(sqlite3.connect(registry.file)) as db:  # in-process SQLite shares the app's locks
        assert db.execute("SELECT count(*) FROM api_keys WHERE name = ?", (name,)).fetchone() == (0,)


def test_an_unmigrated_registry_is_named_as_the_problem(tmp_path: Path) -> None:
    empty = Registry(tmp_path)
    code, out, err = empty.tenantctl("list")
    assert code == 2
    assert "tenantctl db upgrade" in err and "api_keys" in err
    assert out == ""
