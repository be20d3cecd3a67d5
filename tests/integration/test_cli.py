"""`tenantctl` as a user runs it: a subprocess with a clean environment, in an empty directory.

Bad settings and bad tier templates stop `serve` at once with a message naming what is wrong;
`db upgrade` creates the registry; `emulator` answers AWS calls on the port it was given.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import DEFAULT_TIERS_FILE
from tests.helpers import boto

RUN_TIMEOUT_S = 30  # generous for slow CI; a refused start-up takes ~2 s (imports)
SERVE_FAILS_WITHIN_S = 15


def tenantctl() -> list[str]:
    """The venv's console script, else the module (same code either way)."""
    script = shutil.which("tenantctl", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clean_env(**tenants: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTS_")}
    env.update(tenants)
    return env


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate the process group (the child and anything it started), then kill it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [*tenantctl(), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, time.monotonic() - started
    except subprocess.TimeoutExpired:
        pytest.fail(f"`tenantctl {' '.join(args)}` still running after {timeout} s")
    finally:
        stop(proc)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def serve_env(workdir: Path, **tenants: str) -> dict[str, str]:
    """Settings under which `serve` would start harmlessly if it got past validation: a free
    loopback port, state under the tmp dir, an (unused) external emulator so none is embedded."""
    base = {
        "TENANTS_HOST": "127.0.0.1",
        "TENANTS_PORT": str(free_port()),
        "TENANTS_VAR_DIR": str(workdir / "var"),
        "TENANTS_AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    return clean_env(**{**base, **tenants})


def assert_refused(code: int, err: str, elapsed: float, *names: str) -> None:
    assert code != 0, err
    assert elapsed < SERVE_FAILS_WITHIN_S, f"took {elapsed:.1f} s to refuse"
    for name in names:
        assert name in err, f"{name!r} not named in stderr:\n{err}"
    assert "Traceback" not in err, err


# -- bad tier templates ---------------------------------------------------------------------------


def test_serve_refuses_a_bad_mfa_value_naming_tier_and_field(workdir: Path) -> None:
    text = DEFAULT_TIERS_FILE.read_text()
    assert 'mfa = "ON"' in text  # only the premium tier requires MFA
    tiers = workdir / "tiers.toml"
    tiers.write_text(text.replace('mfa = "ON"', 'mfa = "SOMETIMES"'))
    code, _, err, elapsed = run(["serve"], workdir, serve_env(workdir, TENANTS_TIERS_FILE=str(tiers)))
    assert_refused(code, err, elapsed, "premium", "mfa")
    assert "'basic'" not in err and "'standard'" not in err  # only the bad tier is blamed


def test_serve_refuses_a_tier_without_authenticated_policy(workdir: Path) -> None:
    tiers = workdir / "tiers.toml"
    tiers.write_text(
        '[tiers.fine]\ndescription = "Has a role policy"\n'
        '[[tiers.fine.authenticated_policy]]\nEffect = "Allow"\nAction = ["s3:GetObject"]\n'
        'Resource = ["arn:aws:s3:::data/{{tenant_id}}/*"]\n'
        '[tiers.lonely]\ndescription = "No role policy"\nmfa = "OFF"\n'
    )
    code, _, err, elapsed = run(["serve"], workdir, serve_env(workdir, TENANTS_TIERS_FILE=str(tiers)))
    assert_refused(code, err, elapsed, "lonely", "authenticated_policy")
    assert "'fine'" not in err


def test_serve_refuses_a_missing_templates_file(workdir: Path) -> None:
    missing = workdir / "no-such-tiers.toml"
    code, _, err, elapsed = run(["serve"], workdir, serve_env(workdir, TENANTS_TIERS_FILE=str(missing)))
    assert_refused(code, err, elapsed, "no-such-tiers.toml", "TENANTS_TIERS_FILE")


# -- bad settings ---------------------------------------------------------------------------------


def test_serve_refuses_a_port_that_is_not_a_number(workdir: Path) -> None:
    code, _, err, elapsed = run(["serve"], workdir, serve_env(workdir, TENANTS_PORT="notaport"))
    assert_refused(code, err, elapsed, "TENANTS_PORT")


def test_serve_refuses_a_resource_prefix_with_aws_in_it(workdir: Path) -> None:
    code, _, err, elapsed = run(["serve"], workdir, serve_env(workdir, TENANTS_RESOURCE_PREFIX="my-aws-prefix"))
    assert_refused(code, err, elapsed, "TENANTS_RESOURCE_PREFIX", "aws")
    assert "TENANTS_PORT" not in err  # only the bad variable is blamed


# -- db upgrade -----------------------------------------------------------------------------------


def test_db_upgrade_creates_the_registry_under_var_dir(workdir: Path) -> None:
    var = workdir / "var"
    code, _, err, _ = run(["db", "upgrade"], workdir, clean_env(TENANTS_VAR_DIR=str(var)))
    assert code == 0, err
    db = var / "tenants.db"
    assert db.is_file(), sorted(p.name for p in workdir.rglob("*"))
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        head = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"tenants", "jobs", "api_keys", "alembic_version"} <= tables, tables
    assert len(head) == 1
    # A second run is a no-op at head.
    code, _, err, _ = run(["db", "upgrade"], workdir, clean_env(TENANTS_VAR_DIR=str(var)))
    assert code == 0, err


# -- emulator -------------------------------------------------------------------------------------


@pytest.fixture
def emulator_process(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [*tenantctl(), "emulator", "--port", str(port)],
        cwd=workdir,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc, port
    finally:
        stop(proc)
        assert not port_open(port), f"something still listens on {port} after the emulator was stopped"


def test_emulator_answers_sts_on_its_port_and_stops_on_sigterm(
    emulator_process: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = emulator_process
    deadline = time.monotonic() + 10
    while not port_open(port):
        assert proc.poll() is None, f"the emulator exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"the emulator did not listen on {port} within 10 s"
        time.sleep(0.1)
    identity = boto("sts", f"http://127.0.0.1:{port}").get_caller_identity()
    assert identity["Account"] == "123456789012"

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode is not None
    assert not port_open(port)
