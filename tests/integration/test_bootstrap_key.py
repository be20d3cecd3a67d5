"""The bootstrap API key across restarts: a changed value replaces the old key, a revoked one stays
revoked, a value that belongs to another key is refused by name, and no log line ever holds a key
or its hash. Registry-level on SQLite and PostgreSQL; `tenantctl serve` as subprocesses on one
SQLite registry; file modes of a fresh `var/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import stat
import subprocess
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry.api_keys import ApiKeyStore
from adapters.registry.engine import make_engine
from domain.errors import ApiKeyConflict
from service.apikeys import BOOTSTRAP_KEY_ID, bootstrap_record, issue_key
from tests.integration.test_cli import clean_env, free_port, run, tenantctl

KEY_A = "tpk_bootstrap_first_" + "a" * 30
KEY_B = "tpk_bootstrap_second_" + "b" * 30


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def assert_no_credentials(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text, "a key reached the output"
        assert sha(key) not in text, "a key's hash reached the output"


# -- the registry (SQLite and PostgreSQL) ------------------------------------------------------------


async def put(store: ApiKeyStore, key: str) -> tuple[str, bool]:
    record, change = await store.put_bootstrap(bootstrap_record(key, datetime.now(UTC)))
    assert record.id == BOOTSTRAP_KEY_ID
    return change, record.revoked_at is None


async def test_a_changed_bootstrap_value_replaces_the_old_key(engine: AsyncEngine) -> None:
    store = ApiKeyStore(engine)
    assert await put(store, KEY_A) == ("created", True)
    assert await put(store, KEY_A) == ("kept", True)  # every start-up with the same value
    assert await put(store, KEY_B) == ("rotated", True)

    assert await store.find_by_hash(sha(KEY_A)) is None  # the old value no longer authenticates
    new = await store.find_by_hash(sha(KEY_B))
    assert new is not None and new.id == BOOTSTRAP_KEY_ID and new.is_active(datetime.now(UTC))
    assert [k.id for k in await store.list()].count(BOOTSTRAP_KEY_ID) == 1
    assert await put(store, KEY_A) == ("rotated", True)  # and back again
    assert await store.find_by_hash(sha(KEY_B)) is None


async def test_a_revoked_bootstrap_key_stays_revoked_until_its_value_changes(engine: AsyncEngine) -> None:
    store = ApiKeyStore(engine)
    await put(store, KEY_A)
    assert await store.revoke(BOOTSTRAP_KEY_ID, datetime.now(UTC))
    assert await put(store, KEY_A) == ("kept", False)  # a restart does not undo a revocation
    old = await store.find_by_hash(sha(KEY_A))
    assert old is not None and not old.is_active(datetime.now(UTC))
    assert await put(store, KEY_B) == ("rotated", True)  # a new value is a new key
    assert await store.find_by_hash(sha(KEY_A)) is None


async def test_replicas_starting_together_with_the_same_new_key_all_succeed(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    try:
        stores = [ApiKeyStore(e) for e in engines]
        for round_, key in enumerate([KEY_A, KEY_B, KEY_A, KEY_B]):
            changes = await asyncio.gather(*(put(s, key) for s in stores))
            first = "created" if round_ == 0 else "rotated"
            assert sorted(changes) == sorted([(first, True)] + [("kept", True)] * 3), changes
            record = await stores[0].find_by_hash(sha(key))
            assert record is not None and record.id == BOOTSTRAP_KEY_ID
    finally:
        for e in engines:
            await e.dispose()


async def test_a_bootstrap_value_held_by_another_key_is_a_conflict_naming_no_hash(engine: AsyncEngine) -> None:
    store = ApiKeyStore(engine)
    issued = issue_key("ci", ["tenants:read"], datetime.now(UTC))
    await store.add(issued.record)

    with pytest.raises(ApiKeyConflict) as taken:
        await store.put_bootstrap(bootstrap_record(issued.key, datetime.now(UTC)))
    assert taken.value.holder_id == issued.record.id and issued.record.id in taken.value.message
    with pytest.raises(ApiKeyConflict) as twice:
        await store.add(issued.record)  # the same id (and value) again
    # What a log line would show of these errors: the whole chain, as a traceback prints it.
    for error in (taken.value, twice.value):
        assert_no_credentials("".join(traceback.format_exception(error)), issued.key)
    held = await store.get(issued.record.id)
    assert held is not None and held.scopes == ("tenants:read",)  # not raised to every scope
    assert await store.get(BOOTSTRAP_KEY_ID) is None


# -- `tenantctl serve`, started and stopped as an operator does ------------------------------------------


class Service:
    def __init__(self, directory: Path, emulator_endpoint: str) -> None:
        self.directory = directory
        self.var = directory / "var"
        self.env = clean_env(
            TENANTS_HOST="127.0.0.1",
            TENANTS_VAR_DIR=str(self.var),
            TENANTS_AWS_ENDPOINT_URL=emulator_endpoint,
            TENANTS_WORKER_ENABLED="false",
        )
        self.logs: list[str] = []

    def tenantctl(self, *args: str, **env: str) -> tuple[int, str, str]:
        code, out, err, _ = run(list(args), self.directory, {**self.env, **env})
        self.logs.append(out + err)
        assert "Traceback" not in err, err
        return code, out, err

    @contextlib.contextmanager
    def serving(self, *args: str, **env: str) -> Iterator[tuple[str, Path]]:
        """`tenantctl serve ARGS` until /health/ready answers 200: (its URL, its output file)."""
        port = free_port()
        log_path = self.directory / f"serve-{len(self.logs)}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [*tenantctl(), "serve", *args],
                cwd=self.directory,
                env={**self.env, "TENANTS_PORT": str(port), **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, "not ready in 30 s:\n" + log_path.read_text()
                time.sleep(0.1)
            yield url, log_path
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self.logs.append(log_path.read_text())

    def refused(self, *args: str, **env: str) -> str:
        code, out, err, _ = run(["serve", *args], self.directory, {**self.env, "TENANTS_PORT": str(free_port()), **env})
        self.logs.append(out + err)
        assert code != 0, out + err
        return out + err


def status(url: str, key: str) -> int:
    return httpx.get(f"{url}/v1/tiers", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code


@pytest.fixture
def service(tmp_path: Path, emulator_endpoint: str) -> Service:
    svc = Service(tmp_path, emulator_endpoint)
    code, _, err = svc.tenantctl("db", "upgrade")
    assert code == 0, err
    return svc


def log_events(path: Path) -> list[dict[str, object]]:
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def test_serve_with_a_new_bootstrap_value_rotates_the_key(service: Service) -> None:
    with service.serving(TENANTS_BOOTSTRAP_API_KEY=KEY_A) as (url, _):
        assert status(url, KEY_A) == 200
    with service.serving(TENANTS_BOOTSTRAP_API_KEY=KEY_B) as (url, log_path):
        assert status(url, KEY_B) == 200
        assert status(url, KEY_A) == 401
    text = log_path.read_text()
    assert "Traceback" not in text, text
    rotated = [e for e in log_events(log_path) if e.get("event") == "bootstrap_key_rotated"]
    assert len(rotated) == 1, text
    assert rotated[0]["key_id"] == BOOTSTRAP_KEY_ID
    assert_no_credentials("\n".join(service.logs), KEY_A, KEY_B)


def test_serve_refuses_a_bootstrap_value_that_is_another_keys(service: Service) -> None:
    code, out, err = service.tenantctl("keys", "create", "--name", "ci", "--scope", "tenants:read", "--output", "json")
    assert code == 0, err
    made = json.loads(out)
    service.logs[-1] = err  # stdout is the key itself, printed once on purpose
    said = service.refused(TENANTS_BOOTSTRAP_API_KEY=made["key"])
    assert "Traceback" not in said, said
    assert "TENANTS_BOOTSTRAP_API_KEY" in said and made["id"] in said, said
    assert_no_credentials("\n".join(service.logs), made["key"])


def test_a_revoked_bootstrap_key_stays_revoked_and_the_banner_says_so(service: Service) -> None:
    key_file = service.var / "bootstrap-api-key"
    with service.serving("--dev") as (url, log_path):
        key = key_file.read_text().strip()
        assert key in log_path.read_text()  # the banner shows the working key...
        assert status(url, key) == 200
    code, _, err = service.tenantctl("keys", "revoke", BOOTSTRAP_KEY_ID)
    assert code == 0, err

    with service.serving("--dev") as (url, log_path):
        assert status(url, key) == 401  # ...a restart does not undo the revocation...
    banner = log_path.read_text()
    assert key not in banner and "curl" not in banner, banner  # ...and the banner offers no dead key
    assert "revoked" in banner and "tenantctl keys create" in banner, banner
    assert "Traceback" not in banner, banner

    key_file.unlink()  # a new value is a new key: generated, registered, shown
    with service.serving("--dev") as (url, log_path):
        new = key_file.read_text().strip()
        assert new != key
        assert status(url, new) == 200
        assert status(url, key) == 401
    banner = log_path.read_text()
    assert new in banner and "curl" in banner and "Traceback" not in banner, banner


# -- file modes ---------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_var_dir_and_the_registry_in_it_are_private(tmp_path: Path, emulator_endpoint: str) -> None:
    svc = Service(tmp_path, emulator_endpoint)
    code, _, err = svc.tenantctl("db", "upgrade")
    assert code == 0, err
    assert mode(svc.var) == 0o700
    registry = sorted(svc.var.glob("tenants.db*"))
    assert svc.var / "tenants.db" in registry
    assert {p.name: mode(p) for p in registry} == {p.name: 0o600 for p in registry}

    with svc.serving("--dev"):
        files = sorted(svc.var.glob("tenants.db*"))
        assert {svc.var / "tenants.db-wal", svc.var / "tenants.db-shm"} <= set(files), files  # WAL mode
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(svc.var / "bootstrap-api-key") == 0o600
    assert mode(svc.var) == 0o700


def test_an_existing_registry_file_loses_what_other_users_could_do(tmp_path: Path, emulator_endpoint: str) -> None:
    svc = Service(tmp_path, emulator_endpoint)
    svc.var.mkdir(mode=0o750)
    (svc.var / "tenants.db").touch(mode=0o664)  # e.g. made by a version that did not restrict it
    os.chmod(svc.var / "tenants.db", 0o664)
    code, _, err = svc.tenantctl("db", "upgrade")
    assert code == 0, err
    assert mode(svc.var / "tenants.db") == 0o660  # nothing for others; the group is the operator's call
    assert mode(svc.var) == 0o750  # a directory the operator made is left as it is
