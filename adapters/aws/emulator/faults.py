"""The emulator's fault layer: AWS's transient failures (and chosen permanent ones) on demand.

`FaultMiddleware` is the outermost WSGI wrapper of the emulator (server.build_app). It acts only
on AWS API calls, which it recognises by protocol:

- JSON protocol (Cognito): an `X-Amz-Target: <Prefix>.<Operation>` header;
- query protocol (IAM, STS): `Action=<Operation>` in a form body or in the query string.

Everything else passes through untouched and uncounted: moto's own `/moto-api/`, the emulator's
control endpoints under `/_emulator/`, and REST-protocol calls (no service here uses one). STS
GetCallerIdentity is exempt too (counted apart, never faulted), so health checks and the
service's start-up account look-up are not flaky.

Random faults (`rate` R in [0, 1]): each call is faulted with probability R, and a faulted call
gets one of three kinds, uniformly:

- ``throttle``: answered at once, not executed, with the service's throttling error: Cognito
  HTTP 400 `TooManyRequestsException`, IAM/STS HTTP 400 `Throttling`;
- ``server_error``: answered at once, not executed, with HTTP 500: Cognito
  `InternalErrorException`, IAM `ServiceFailure`, anything else `InternalFailure`;
- ``lost``: executed in full (its state changes happen), then the TCP connection is shut down
  without a byte of the response. botocore raises `ConnectionClosedError` (a retryable
  connection error); the caller cannot know whether the call took effect.

Draws come from one `random.Random(seed)` under a lock, one draw per call (two when faulted), so a
seeded run over the same sequence of calls faults the same calls. Concurrent callers make the
arrival order, and so the faulted calls, vary; the rate does not.

Targeted faults (for tests) take precedence over random ones: "the next `count` calls of
operation O" get a given error without being executed (mode ``error``, e.g. a quota's
`LimitExceededException`), or are executed and lose their response (mode ``lost``).

Control endpoint (JSON in, JSON out; `set_faults`/`clear_faults`/`fault_stats` wrap it):

- ``GET /_emulator/faults``: the configuration and the counters (`FaultInjector.snapshot`);
- ``POST /_emulator/faults``: any of ``{"rate": 0.3, "seed": 1}`` (random faults; a seed
  restarts the sequence), ``{"operation": "CreateIdentityPool", "error":
  "LimitExceededException", "message": "...", "status": 400, "count": 1, "mode": "error",
  "service": "cognito-identity"}`` (one targeted fault; ``service`` optional, ``count`` defaults
  to 1, ``"count": null`` means every matching call until cleared), ``{"reset_stats": true}``;
- ``DELETE /_emulator/faults``: drop the targeted faults (the rate and the counters stay).
"""

from __future__ import annotations

import http
import json
import logging
import random
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .protocol import read_body

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]

CONTROL_PATH = "/_emulator/faults"
CONTROL_PREFIX = "/_emulator/"
MOTO_API_PREFIX = "/moto-api/"

THROTTLE, SERVER_ERROR, LOST = "throttle", "server_error", "lost"
RANDOM_KINDS = (THROTTLE, SERVER_ERROR, LOST)
TARGETED_ERROR, TARGETED_LOST = "targeted_error", "targeted_lost"
ALL_KINDS = (*RANDOM_KINDS, TARGETED_ERROR, TARGETED_LOST)

MODES = ("error", "lost")
RULE_FIELDS = ("service", "mode", "error", "message", "status", "count")

# X-Amz-Target prefixes of the JSON services this project uses, by signing name.
JSON_TARGET_PREFIXES = {
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AWSCognitoIdentityService": "cognito-identity",
}
COGNITO_SERVICES = ("cognito-idp", "cognito-identity")
# Never faulted: (service, operation).
EXEMPT = frozenset({("sts", "GetCallerIdentity")})

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
RATE_EXCEEDED = "Rate exceeded"
DEFAULT_TARGETED_MESSAGE = "Injected by the emulator's fault layer"


@dataclass(frozen=True)
class FaultConfig:
    """Random faults: `rate` in [0, 1] of the AWS API calls, drawn from `random.Random(seed)`."""

    rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate)


class FaultSpecError(ValueError):
    """A control request the fault layer cannot honour (answered HTTP 400)."""


@dataclass(frozen=True)
class Call:
    """An AWS API call as the fault layer sees it."""

    service: str  # signing name: cognito-idp, cognito-identity, iam, sts, ...
    operation: str
    protocol: str  # "json" or "query"

    @property
    def key(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class _Rule:
    operation: str
    service: str | None
    mode: str
    error: str | None
    message: str
    status: int
    remaining: int | None  # None: every matching call until cleared

    def matches(self, call: Call) -> bool:
        return self.operation == call.operation and self.service in (None, call.service)

    def describe(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "service": self.service,
            "mode": self.mode,
            "error": self.error,
            "message": self.message,
            "status": self.status,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class Decision:
    kind: str  # one of ALL_KINDS
    error: str | None = None
    message: str = ""
    status: int = 400

    @property
    def lost(self) -> bool:
        return self.kind in (LOST, TARGETED_LOST)


class FaultInjector:
    """The fault layer's state: the random rate and generator, the targeted rules, the counters.

    Thread-safe; one per emulator app, so two servers in one process fault independently.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        config = config or FaultConfig()
        self._lock = threading.Lock()
        self._rate = config.rate
        self._seed = config.seed
        self._random = random.Random(config.seed)
        self._rules: list[_Rule] = []
        self._reset_stats()

    # --- configuration -----------------------------------------------------------------------

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Apply a POST body (see the module docstring); returns the new snapshot."""
        if not isinstance(spec, dict):
            raise FaultSpecError("expected a JSON object")
        unknown = sorted(set(spec) - {"rate", "seed", "reset_stats", "operation", *RULE_FIELDS})
        if unknown:
            raise FaultSpecError(f"unknown field(s): {', '.join(unknown)}")
        rule = _rule_from(spec) if "operation" in spec else None
        if rule is None and any(field in spec for field in RULE_FIELDS):
            raise FaultSpecError("a targeted fault needs an 'operation'")
        rate = spec.get("rate")
        if "rate" in spec:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)):
                raise FaultSpecError("'rate' must be a number in [0, 1]")
            _check_rate(float(rate))
        seed = spec.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultSpecError("'seed' must be an integer or null")
        with self._lock:
            if "rate" in spec:
                self._rate = float(rate)
            if "seed" in spec:
                self._seed = seed
                self._random = random.Random(seed)
            if spec.get("reset_stats"):
                self._reset_stats()
            if rule is not None:
                self._rules.append(rule)
        return self.snapshot()

    def add(self, **spec: Any) -> None:
        """One targeted fault, in process (same fields as the POST body)."""
        self.configure(spec)

    def clear(self) -> None:
        """Drop the targeted faults."""
        with self._lock:
            self._rules.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rate": self._rate,
                "seed": self._seed,
                "targeted": [rule.describe() for rule in self._rules],
                "exempt": sorted(f"{service}:{operation}" for service, operation in EXEMPT),
                "stats": json.loads(json.dumps(self._stats)),  # a deep copy
            }

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.snapshot()["stats"])

    # --- per call ----------------------------------------------------------------------------

    def decide(self, call: Call) -> Decision | None:
        """Count the call and say whether (and how) to fault it."""
        with self._lock:
            if (call.service, call.operation) in EXEMPT:
                self._stats["exempt_calls"] += 1
                return None
            self._stats["calls"] += 1
            per_op = self._stats["by_operation"].setdefault(call.key, {"calls": 0})
            per_op["calls"] += 1
            # One draw per call whatever happens, so the sequence depends on the calls alone.
            faulted = self._random.random() < self._rate
            kind = self._random.choice(RANDOM_KINDS) if faulted else None
            decision = self._targeted(call)
            if decision is None and kind is not None:
                decision = Decision(kind=kind)
            if decision is not None:
                self._stats["faulted"] += 1
                self._stats["by_kind"][decision.kind] += 1
                per_op[decision.kind] = per_op.get(decision.kind, 0) + 1
            return decision

    def _targeted(self, call: Call) -> Decision | None:
        for index, rule in enumerate(self._rules):
            if not rule.matches(call):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    del self._rules[index]
            if rule.mode == "lost":
                return Decision(kind=TARGETED_LOST)
            return Decision(kind=TARGETED_ERROR, error=rule.error, message=rule.message, status=rule.status)
        return None

    def _reset_stats(self) -> None:
        self._stats: dict[str, Any] = {
            "calls": 0,  # AWS API calls subject to faults
            "exempt_calls": 0,  # GetCallerIdentity
            "faulted": 0,
            "by_kind": {kind: 0 for kind in ALL_KINDS},
            "by_operation": {},  # "iam:CreateRole" -> {"calls": n, "<kind>": m, ...}
        }


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"'rate' must be in [0, 1], not {rate}")


def _rule_from(spec: dict[str, Any]) -> _Rule:
    operation = spec.get("operation")
    if not isinstance(operation, str) or not operation:
        raise FaultSpecError("'operation' must be an operation name, e.g. CreateIdentityPool")
    service = spec.get("service")
    if service is not None and not isinstance(service, str):
        raise FaultSpecError("'service' must be a signing name, e.g. cognito-identity")
    mode = spec.get("mode", "error")
    if mode not in MODES:
        raise FaultSpecError(f"'mode' must be one of {', '.join(MODES)}")
    error = spec.get("error")
    if mode == "error" and (not isinstance(error, str) or not error):
        raise FaultSpecError("mode 'error' needs an 'error' code, e.g. LimitExceededException")
    message = spec.get("message") or DEFAULT_TARGETED_MESSAGE
    if not isinstance(message, str):
        raise FaultSpecError("'message' must be a string")
    status = spec.get("status", 400)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultSpecError("'status' must be an HTTP error status (400-599)")
    count = spec.get("count", 1)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultSpecError("'count' must be a positive integer, or null for every call")
    return _Rule(operation, service, mode, error, message, status, count)


# --- the WSGI layer ------------------------------------------------------------------------------


class ResponseDropped(ConnectionAbortedError):
    """Raised out of the app after a lost response's socket is shut down.

    werkzeug's request handler treats a ConnectionError as a client that went away: it writes
    nothing and logs nothing, and the server thread carries on.
    """


class FaultMiddleware:
    """The outermost WSGI layer: the control endpoint, and faults on AWS API calls."""

    def __init__(self, app: WsgiApp, injector: FaultInjector | None = None) -> None:
        self.app = app
        self.injector = injector or FaultInjector()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        if path == CONTROL_PATH or path == CONTROL_PATH + "/":
            return self._control(environ, start_response)
        if path.startswith(MOTO_API_PREFIX) or path.startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        call = identify(environ)
        if call is None:
            return self.app(environ, start_response)
        decision = self.injector.decide(call)
        if decision is None:
            return self.app(environ, start_response)
        if decision.lost:
            return self._lose(call, environ, start_response)
        if decision.kind == THROTTLE:
            code, status, message = throttle_code(call), 400, RATE_EXCEEDED
        elif decision.kind == SERVER_ERROR:
            code, status, message = server_error_code(call), 500, "An internal error occurred"
        else:
            code, status, message = decision.error or "", decision.status, decision.message
        return error_response(start_response, call, code, message, status)

    def _lose(self, call: Call, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Run the call to completion, then hang up without answering."""
        _drain(self.app, environ)
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:  # not werkzeug's server: nothing to hang up; a 5xx is the nearest thing
            logger.warning("no socket in the WSGI environ; answering a lost response with 502")
            return error_response(start_response, call, server_error_code(call), "response lost", 502)
        logger.info("fault layer: dropped the response to %s (executed)", call.key)
        raise ResponseDropped(f"emulator fault layer dropped the response to {call.key}")

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method == "GET":
                body = self.injector.snapshot()
            elif method == "POST":
                raw = read_body(environ)
                try:
                    spec = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise FaultSpecError(f"body is not JSON: {exc}") from None
                body = self.injector.configure(spec)
            elif method == "DELETE":
                self.injector.clear()
                body = self.injector.snapshot()
            else:
                return _plain(start_response, 405, {"error": f"method {method} not allowed"})
        except FaultSpecError as exc:
            return _plain(start_response, 400, {"error": str(exc)})
        return _plain(start_response, 200, body)


def identify(environ: dict[str, Any]) -> Call | None:
    """The AWS API call a request makes, or None for anything else (left alone)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        service = JSON_TARGET_PREFIXES.get(prefix) or signing_service(environ) or prefix
        return Call(service=service, operation=operation, protocol="json")
    action = _query_action(environ)
    if action:
        return Call(service=signing_service(environ) or "unknown", operation=action, protocol="query")
    return None


def signing_service(environ: dict[str, Any]) -> str | None:
    """The service in a SigV4 credential scope (`Credential=AKID/date/region/SERVICE/aws4_request`)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    start = auth.find(marker)
    if start < 0:
        return None
    parts = auth[start + len(marker) :].split(",", 1)[0].strip().split("/")
    return parts[3] if len(parts) == 5 else None


def _query_action(environ: dict[str, Any]) -> str | None:
    query = parse_qs(environ.get("QUERY_STRING", "") or "")
    if query.get("Action"):
        return query["Action"][0]
    content_type = (environ.get("CONTENT_TYPE", "") or "").split(";", 1)[0].strip().lower()
    if environ.get("REQUEST_METHOD") != "POST" or content_type != FORM_CONTENT_TYPE:
        return None
    form = parse_qs(read_body(environ).decode("utf-8", "replace"))
    actions = form.get("Action")
    return actions[0] if actions else None


def throttle_code(call: Call) -> str:
    if call.service in COGNITO_SERVICES:
        return "TooManyRequestsException"
    return "Throttling" if call.protocol == "query" else "ThrottlingException"


def server_error_code(call: Call) -> str:
    if call.service in COGNITO_SERVICES:
        return "InternalErrorException"
    if call.service == "iam":
        return "ServiceFailure"
    return "InternalFailure"


def error_response(
    start_response: StartResponse, call: Call, code: str, message: str, status: int
) -> list[bytes]:
    """An AWS error in the shape botocore parses for the call's protocol."""
    request_id = str(uuid.uuid4())
    status_line = f"{status} {_phrase(status)}"
    if call.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
    else:
        fault_type = "Receiver" if status >= 500 else "Sender"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{fault_type}</Type><Code>{_xml(code)}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    start_response(status_line, headers)
    return [body]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _plain(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    start_response(
        f"{status} {_phrase(status)}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _drain(app: WsgiApp, environ: dict[str, Any]) -> None:
    """Run the inner app to the end and throw its answer away."""

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return lambda data: None

    result = app(environ, start_response)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


# --- helpers for tests (urllib only) ------------------------------------------------------------


def _control_request(endpoint_url: str, method: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + CONTROL_PATH,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise FaultSpecError(f"{method} {CONTROL_PATH}: HTTP {exc.code}: {detail}") from None


def set_faults(endpoint_url: str, **spec: Any) -> dict[str, Any]:
    """POST /_emulator/faults: e.g. ``set_faults(url, rate=0.3, seed=1)`` or
    ``set_faults(url, operation="CreateRole", error="LimitExceeded", count=1)``."""
    return _control_request(endpoint_url, "POST", spec)


def clear_faults(endpoint_url: str) -> dict[str, Any]:
    """DELETE /_emulator/faults: drop the targeted faults (rate and counters stay)."""
    return _control_request(endpoint_url, "DELETE")


def fault_stats(endpoint_url: str) -> dict[str, Any]:
    """GET /_emulator/faults: the configuration plus ``stats`` (calls, faulted, by_kind, by_operation)."""
    return _control_request(endpoint_url, "GET")


__all__ = [
    "FaultConfig",
    "FaultInjector",
    "FaultMiddleware",
    "FaultSpecError",
    "clear_faults",
    "fault_stats",
    "set_faults",
]
