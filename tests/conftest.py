"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def emulator_endpoint() -> Iterator[str]:
    """The URL of one local AWS emulator (moto + the project's extensions) for the whole session,
    on 127.0.0.1 and a free port. Its state is shared: tests use unique names, not teardown."""
    from adapters.aws.emulator import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def quota_emulator_endpoint() -> Iterator[str]:
    """Like ``emulator_endpoint``, with Cognito's request rates enforced (``quotas="cognito"``):
    calls beyond a category's rate are answered TooManyRequestsException. Its own buckets, but
    moto's state is process-global, so resources are shared with ``emulator_endpoint``."""
    from adapters.aws.emulator import EmulatorServer

    with EmulatorServer(port=0, quotas="cognito") as server:
        yield server.endpoint_url
