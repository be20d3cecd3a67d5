"""Helpers of bench/fast_reads.py, registry_scale.py and memory.py on top of bench/_common.py: a
private PostgreSQL database, `tenantctl serve` on it, bulk seeding of the registry, the machine a
run came from, RSS. Not imported by the service or the tests."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import API_KEY, Proc, emulator, service

__all__ = ["KEY", "emulator", "machine", "pct", "pg_database", "rss_kib", "seed", "serve", "tenant_rows"]

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
KEY = API_KEY  # the bootstrap key of every benchmark server (all scopes)


@contextmanager
def pg_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database (asyncpg URL), dropped afterwards."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    conn = ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    subprocess.run(["createdb", *conn, name], check=True)
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        subprocess.run(["dropdb", *conn, "--force", name], check=False)


@contextmanager
def serve(database_url: str, aws_url: str, **env: str) -> Iterator[Proc]:
    """`tenantctl serve` (API + in-process worker) on PostgreSQL, with production's INFO logs
    (written to a file, as a container's stdout would be); ``env`` adds TENANTS_* variables."""
    with service(aws_url, database_url=database_url, env={"TENANTS_LOG_LEVEL": "INFO", **env}) as proc:
        yield proc


def tenant_rows(start: int, count: int, *, tier_of: Any = None, status_of: Any = None) -> list[dict[str, Any]]:
    """Registry rows for tenants ``t{start:07d}`` onwards: active, with the outputs of a
    provisioned standard tenant, so a read serializes what a real one would."""
    now = datetime.now(UTC)
    rows = []
    for i in range(start, start + count):
        tid = f"t{i:07d}"
        rows.append(
            {
                "tenant_id": tid,
                "tier": tier_of(i) if tier_of else "standard",
                "display_name": f"Tenant {i}",
                "admin_email": f"admin@{tid}.example.com",
                "status": status_of(i) if status_of else "active",
                "account_id": "123456789012",
                "region": "us-east-1",
                "last_error": None,
                "outputs": {
                    "user_pool_id": f"us-east-1_{i:09d}",
                    "user_pool_arn": f"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_{i:09d}",
                    "app_client_id": uuid.UUID(int=i).hex[:26],
                    "identity_pool_id": f"us-east-1:{uuid.UUID(int=i)}",
                    "authenticated_role_arn": f"arn:aws:iam::123456789012:role/tenants/bench-{tid}-auth",
                },
                "completed_steps": ["user_pool", "app_client", "identity_pool", "auth_role", "role_policy", "role_mapping"],
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    return rows


async def seed(database_url: str, count: int, *, start: int = 0, chunk: int = 5000, **kw: Any) -> float:
    """Insert ``count`` tenants in bulk; returns the seconds it took."""
    from adapters.registry.engine import make_engine
    from adapters.registry.tables import tenants

    engine = make_engine(database_url)
    started = time.perf_counter()
    try:
        for offset in range(start, start + count, chunk):
            n = min(chunk, start + count - offset)
            async with engine.begin() as conn:
                await conn.execute(tenants.insert(), tenant_rows(offset, n, **kw))
        async with engine.begin() as conn:
            from sqlalchemy import text

            if engine.dialect.name == "postgresql":
                await conn.execute(text("ANALYZE tenants"))
            else:
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    pg = "unknown"
    if shutil.which("psql"):
        result = subprocess.run(
            ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-Atc", "SHOW server_version", "postgres"],
            capture_output=True,
            text=True,
            check=False,
        )
        pg = result.stdout.strip() or pg
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"nproc {os.cpu_count()}, CPU {cpu}, RAM {ram}, Python {platform.python_version()}, PostgreSQL {pg}; load average now {load}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
