"""Runs `tenantctl serve` and `tenantctl emulator` as real processes for the reliability tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.helpers import API_KEY, free_port, tenantctl

PREFIX = "rel"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTS_")}
    env.update(extra)
    return env


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Emulator:
    """`tenantctl emulator` as a subprocess (the standalone emulator of the issue)."""

    log: Path
    fault_rate: float = 0.0
    seed: int | None = None
    latency_ms: float = 0.0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        args = [tenantctl(), "emulator", "--port", str(self.port)]
        if self.fault_rate:
            args += ["--fault-rate", str(self.fault_rate)]
        if self.seed is not None:
            args += ["--fault-seed", str(self.seed)]
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        handle = self.log.open("ab")
        self.process = subprocess.Popen(args, env=clean_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        sts = boto3.client(
            "sts", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(Exception):
                return bool(sts.get_caller_identity()["Account"])
            return False

        wait_until(up, 30, "the emulator to listen")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Service:
    """One `tenantctl serve` process; ``crash_at`` makes it SIGKILL itself at that point."""

    database_url: str
    aws_endpoint: str
    workdir: Path
    crash_at: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    command: str = "serve"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = clean_env(
            TENANTS_PORT=str(self.port),
            TENANTS_DATABASE_URL=self.database_url,
            TENANTS_AWS_ENDPOINT_URL=self.aws_endpoint,
            TENANTS_AWS_STRICT_PARAMS="true",
            TENANTS_BOOTSTRAP_API_KEY=API_KEY,
            TENANTS_RESOURCE_PREFIX=PREFIX,
            TENANTS_VAR_DIR=str(self.workdir / "var"),
            TENANTS_POLL_INTERVAL_S="0.1",
            TENANTS_LEASE_SECONDS="1",
            # Fault and concurrency runs poll many tenants with one key; the limits have their own tests.
            TENANTS_RATE_LIMIT_PER_S="10000",
            TENANTS_RATE_LIMIT_BURST="10000",
        )
        if self.crash_at:
            env["TENANTS_TEST_CRASH_AT"] = self.crash_at
        env.update(self.extra_env)
        return env

    def start(self, *, wait_ready: bool = True) -> Service:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / f"{self.command}-{self.port}-{time.monotonic_ns()}.log"
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [tenantctl(), self.command], env=self.env(), cwd=self.workdir, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_ready and self.command == "serve":

            def ready() -> bool:
                assert self.process is not None and self.process.poll() is None, self.text()
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
                return False

            wait_until(ready, 30, "the service to be ready", 0.1)
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def wait_killed(self, timeout: float = 60) -> str:
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"crash point {self.crash_at} was never reached:\n{self.text()[-3000:]}") from None
        assert code == -signal.SIGKILL, f"exited with {code}, not SIGKILL:\n{self.text()[-3000:]}"
        lines = [json.loads(line) for line in self.text().splitlines() if '"crash_point_reached"' in line]
        assert lines, self.text()[-3000:]
        return str(lines[-1]["point"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
