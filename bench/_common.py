"""Shared by the benchmarks under bench/: start the emulator and the service as real processes.

Stable API (other benchmarks use it):

- ``free_port() -> int``
- ``emulator(latency_ms=0.0, quotas=None, extra_args=()) -> ContextManager[Proc]``:
  ``tenantctl emulator`` as a subprocess on a free loopback port; ``Proc.url`` is its endpoint.
  ``quotas="cognito"`` enforces Cognito's request rates (README "AWS emulator").
- ``service(aws_endpoint_url, *, env=None, database_url=None, tmp=None) -> ContextManager[Proc]``:
  ``tenantctl db upgrade`` then ``tenantctl serve`` as a subprocess on a free port (SQLite in a
  temporary directory unless ``database_url``), ready (``/health/ready`` answers 200) when the
  context is entered. ``Proc.url``, ``Proc.pid``, ``Proc.api_key``, ``Proc.headers`` (the bearer
  header). ``env`` adds or overrides ``TENANTS_*`` variables.
- ``postgres_database(server_url) -> ContextManager[str]``: a throwaway PostgreSQL database on
  that server (created, yielded as a URL, dropped); ``server_url`` e.g.
  ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``.
- ``wait_ready(url, timeout_s=60.0)``: poll a URL until it answers 200.
- ``emulator_stats(url) -> dict``: ``GET /_emulator/quotas`` (admitted and throttled calls per
  operation, with the first and last admission times).
- ``median(values)``, ``percentile(values, p)``, ``ratio_line(name, value, target, unit, higher_is_better)``.

Every process gets its own process group and is terminated (then killed) on exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TENANTCTL = str(BIN / "tenantctl")
API_KEY = "tpk_bench_" + "b" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    url: str
    process: subprocess.Popen[bytes]
    api_key: str = ""
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def wait_ready(url: str, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def emulator(latency_ms: float = 0.0, quotas: str | None = None, extra_args: Sequence[str] = ()) -> Iterator[Proc]:
    port = free_port()
    args = [TENANTCTL, "emulator", "--port", str(port), "--latency-ms", str(latency_ms), *extra_args]
    if quotas:
        args += ["--quotas", quotas]
    log = tempfile.NamedTemporaryFile(prefix="bench-emulator-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/_emulator/faults", process=process)
        yield Proc(url=url, process=process, log_path=Path(log.name))
    finally:
        _stop(process)
        log.close()


@contextmanager
def service(
    aws_endpoint_url: str,
    *,
    env: Mapping[str, str] | None = None,
    database_url: str | None = None,
    tmp: Path | None = None,
) -> Iterator[Proc]:
    with tempfile.TemporaryDirectory(prefix="bench-service-") as scratch:
        var_dir = tmp or Path(scratch)
        port = free_port()
        full_env = {
            **os.environ,
            "TENANTS_HOST": "127.0.0.1",
            "TENANTS_PORT": str(port),
            "TENANTS_VAR_DIR": str(var_dir),
            "TENANTS_AWS_ENDPOINT_URL": aws_endpoint_url,
            "TENANTS_BOOTSTRAP_API_KEY": API_KEY,
            "TENANTS_RESOURCE_PREFIX": "bench",
            "TENANTS_LOG_LEVEL": "WARNING",
            **({"TENANTS_DATABASE_URL": database_url} if database_url else {}),
            **dict(env or {}),
        }
        subprocess.run([TENANTCTL, "db", "upgrade"], env=full_env, cwd=ROOT, check=True, capture_output=True)
        log_path = var_dir / "serve.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [TENANTCTL, "serve"], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_ready(url + "/health/ready", process=process)
                yield Proc(url=url, process=process, api_key=API_KEY, log_path=log_path)
            finally:
                _stop(process)


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    import asyncio
    import concurrent.futures
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    name = f"bench_{uuid.uuid4().hex[:16]}"

    async def run(statement: str) -> None:
        engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    def execute(statement: str) -> None:
        # On a thread of its own: the caller may be inside an event loop already.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run(statement)).result()

    execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def emulator_stats(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url.rstrip("/") + "/_emulator/quotas", timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile, p in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), int(round(p / 100 * len(ordered) + 0.5))))
    return float(ordered[rank - 1])


def ratio_line(name: str, value: float, target: float, unit: str = "", higher_is_better: bool = False) -> str:
    """``name: value unit (target <= target unit, ratio r: met|MISSED)``."""
    ratio = value / target if target else float("inf")
    met = ratio >= 1.0 if higher_is_better else ratio <= 1.0
    sign = ">=" if higher_is_better else "<="
    return f"{name}: {value:.3f}{unit} (target {sign} {target:.3f}{unit}, ratio {ratio:.3f}: {'met' if met else 'MISSED'})"
