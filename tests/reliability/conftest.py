"""Fixtures of the reliability tests: real processes, a standalone emulator, a real registry."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry.migrate import upgrade
from tests.integration.databases import throwaway_database
from tests.reliability.harness import Emulator


@pytest.fixture(scope="module")
def standalone_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(log=tmp_path_factory.mktemp("emulator") / "emulator.log").start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
async def registry_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """PostgreSQL (a fresh database) when TEST_DATABASE_URL is set, as in CI; else SQLite."""
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        async with throwaway_database(server) as url:
            await upgrade(url)
            yield url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}"
        await upgrade(url)
        yield url


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


# Figures of the run, printed at the end of the session for docs/reliability.md. Tests add to
# them only after their assertions passed, so every figure printed is one that held.
FIGURES: dict[str, Any] = {
    "crash points killed at (provisioning)": 0,
    "crash points killed at (teardown)": 0,
    "AWS calls under faults": 0,
    "faults injected": {},
    "tenants onboarded under faults": 0,
    "tenants across two worker processes": 0,
    "concurrent duplicate POSTs sent": 0,
    "registry outages survived": 0,
    "resources duplicated": 0,
    "resources orphaned": 0,
    "resources lost": 0,
}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not any(FIGURES[k] for k in FIGURES if k.startswith(("crash", "tenants", "AWS", "registry", "concurrent"))):
        return
    terminalreporter.section("reliability figures")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {value}")
