"""The project's local AWS: moto's server app behind a thin middleware, served over real HTTP.

The AWS adapters talk to it exactly as to AWS (HTTP, SigV4, JSON protocol), so the code under
test is the code that runs against AWS. What moto 5.2.5 lacks or does too leniently for this
service lives in `cognito_idp.py`, `cognito_identity.py` and `iam.py`; see AWS-FACTS.md.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from . import authorization, cognito_identity, cognito_idp, iam, speedups
from .faults import FaultConfig, FaultInjector, FaultMiddleware
from .middleware import ExtensionMiddleware
from .persistence import StateFile
from .protocol import Hook
from .quotas import QuotaEnforcer, QuotaMiddleware

LOOPBACK = "127.0.0.1"

HOOKS: dict[str, Hook] = {**cognito_idp.HOOKS, **cognito_identity.HOOKS}


def build_app(
    latency_ms: float = 0.0,
    *,
    fault_rate: float = 0.0,
    fault_seed: int | None = None,
    faults: FaultInjector | None = None,
    quotas: str | QuotaEnforcer | None = None,
    state: StateFile | None = None,
) -> FaultMiddleware:
    """moto's server app (as ThreadedMotoServer builds it) wrapped by the emulator's extensions;
    with ``latency_ms``, by a delay added to every call (AWS's own latency, for benchmarks); and,
    outermost, by the fault layer (faults.py): random faults at ``fault_rate`` drawn from
    ``fault_seed``, plus targeted faults set through ``/_emulator/faults``. The fault layer is
    always there (at rate 0 it only counts calls), so targeted faults work on any emulator.
    Its state is ``build_app(...).injector``, or ``faults`` if given. IAM policies are enforced
    only when moto's INITIAL_NO_AUTH_ACTION_COUNT is set (authorization.py). ``quotas``
    ("cognito", or an enforcer) throttles calls beyond Cognito's request rates (quotas.py), after
    the latency, as AWS counts a call when it arrives. ``state`` keeps the resources in a file
    across restarts (persistence.py)."""
    authorization.install()
    iam.install()
    cognito_idp.install()
    speedups.install()
    app: Any = ExtensionMiddleware(DomainDispatcherApplication(create_backend_app), HOOKS)
    if state is not None:
        app = state.wrap(app)
    app = QuotaMiddleware(app, QuotaEnforcer(quotas) if isinstance(quotas, str) else quotas)
    if latency_ms > 0:
        app = _Latency(app, latency_ms / 1000.0)
    injector = faults or FaultInjector(FaultConfig(rate=fault_rate, seed=fault_seed))
    return FaultMiddleware(app, injector)


class _Latency:
    """Sleeps before each request; the server is threaded, so calls still overlap as on AWS."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        time.sleep(self.seconds)
        return self.app(environ, start_response)


def reset() -> None:
    """Forget every resource in every moto backend (what POST /moto-api/reset does).

    moto's backends are process-global, so this empties every EmulatorServer in the process.
    """
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


class _KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler speaking HTTP/1.1, so connections are kept alive as AWS endpoints
    keep them (moto's own answers HTTP/1.0: a new TCP connection for every call)."""

    protocol_version = "HTTP/1.1"


class _QuietRequestHandler(_KeepAliveRequestHandler):
    """The same without the per-request access log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _make_server(
    host: str,
    port: int,
    log_requests: bool,
    latency_ms: float = 0.0,
    faults: FaultInjector | None = None,
    quotas: QuotaEnforcer | None = None,
    state: StateFile | None = None,
) -> BaseWSGIServer:
    handler = _KeepAliveRequestHandler if log_requests else _QuietRequestHandler
    app = build_app(latency_ms, faults=faults, quotas=quotas, state=state)
    return make_server(host, port, app, threaded=True, request_handler=handler)


class EmulatorServer:
    """The emulator on a background thread; port 0 picks a free port.

    Binding happens in `start()` itself, so the port is known (and a bind error raised) before
    it returns. ``fault_rate``/``fault_seed`` configure the fault layer (faults.py); ``faults``
    is its state, to change in process (or over HTTP with faults.set_faults). ``quotas="cognito"``
    (or an enforcer, e.g. with a test clock) enforces Cognito's request rates; ``quotas`` is then
    the enforcer (its counters), else None. ``state_file`` keeps the emulated resources in that
    file: loaded by `start()`, saved after every call that changes them (persistence.py).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = LOOPBACK,
        *,
        log_requests: bool = False,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        fault_seed: int | None = None,
        quotas: str | QuotaEnforcer | None = None,
        state_file: Path | None = None,
    ) -> None:
        self._host = host
        self.state = StateFile(state_file) if state_file is not None else None
        self._latency_ms = latency_ms
        self.faults = FaultInjector(FaultConfig(rate=fault_rate, seed=fault_seed))
        self.quotas = QuotaEnforcer(quotas) if isinstance(quotas, str) else quotas
        self._requested_port = port
        self._log_requests = log_requests
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("EmulatorServer is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            raise RuntimeError("EmulatorServer is already running")
        if self.state is not None:
            self.state.load()
        self._server = _make_server(
            self._host, self._requested_port, self._log_requests, self._latency_ms, self.faults, self.quotas, self.state
        )
        # A short poll interval keeps stop() quick; serve_forever wakes this often when idle.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"aws-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def reset(self) -> None:
        reset()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    host: str = LOOPBACK,
    port: int = 5000,
    *,
    log_requests: bool = True,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    fault_seed: int | None = None,
    quotas: str | None = None,
) -> None:
    """Serve the emulator in the foreground until interrupted (for `tenantctl emulator`)."""
    faults = FaultInjector(FaultConfig(rate=fault_rate, seed=fault_seed))
    enforcer = QuotaEnforcer(quotas) if quotas else None
    server = _make_server(host, port, log_requests, latency_ms, faults, enforcer)
    url = f"http://{host}:{server.server_address[1]}"
    print(f"AWS emulator listening on {url}", flush=True)
    if fault_rate > 0:
        seed = "random" if fault_seed is None else fault_seed
        print(f"  faults: {fault_rate:.0%} of AWS calls (seed {seed}); see GET {url}/_emulator/faults", flush=True)
    if enforcer is not None:
        print(f"  quotas: {quotas} request rates enforced; see GET {url}/_emulator/quotas", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["EmulatorServer", "FaultConfig", "FaultInjector", "build_app", "reset", "serve_forever"]
