"""Cognito's request-rate quotas, enforced like Cognito does (``--quotas cognito``).

AWS-FACTS.md, "Quotas": user pool operations are grouped in categories, each with a rate per
account and Region, and some with a second, lower rate on any one user pool. A call beyond the
rate is not executed and is answered HTTP 400 ``TooManyRequestsException`` ("Rate exceeded").

Enforced here with token buckets (``rate`` tokens per second, at most ``burst`` kept), one per
(account, Region, category) and one per (account, Region, category, user pool) where AWS has a
per-pool rate. The burst is small (AWS publishes none): one second's worth of calls, so a
client that sends at the rate with the usual jitter gets through, and one that sends more than a
second's worth at once, or keeps sending faster than the rate, is throttled.

Thread-safe (the server is threaded). Counters: ``GET /_emulator/quotas`` answers, per operation,
the calls admitted and throttled and the first and last admission times (``time.time()``), so a
benchmark can read the sustained rate. ``POST /_emulator/quotas`` with ``{"reset_stats": true}``
zeroes them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.token_bucket import TokenBucket

from .faults import _plain, error_response, identify
from .protocol import read_body

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]

CONTROL_PATH = "/_emulator/quotas"
THROTTLE_CODE = "TooManyRequestsException"
THROTTLE_MESSAGE = "Rate exceeded"


@dataclass(frozen=True)
class Category:
    name: str
    rate: float  # per account and Region, requests/s
    per_pool: float | None  # on any one user pool, requests/s
    operations: frozenset[str]


# AWS-FACTS.md; the operations are those of each category this service (and its tests) uses.
COGNITO = (
    Category("UserPoolUpdate", 15.0, None, frozenset({"CreateUserPool", "UpdateUserPool", "DeleteUserPool"})),
    Category(
        "UserPoolClientUpdate",
        15.0,
        5.0,
        frozenset({"CreateUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient"}),
    ),
    Category(
        "UserPoolResourceUpdate",
        15.0,
        5.0,
        frozenset(
            {
                "CreateGroup",
                "UpdateGroup",
                "DeleteGroup",
                "CreateUserPoolDomain",
                "UpdateUserPoolDomain",
                "DeleteUserPoolDomain",
            }
        ),
    ),
    Category("UserCreation", 50.0, None, frozenset({"AdminCreateUser"})),
)
PROFILES = {"cognito": COGNITO}
# Tokens a bucket holds at most: one second's worth, at least 2.
BURST_SECONDS = 1.0
MIN_BURST = 2.0


class QuotaEnforcer:
    """The buckets and the counters of one emulator app."""

    def __init__(self, profile: str = "cognito", clock: Callable[[], float] = time.monotonic) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown quota profile {profile!r}; known: {', '.join(PROFILES)}")
        self.profile = profile
        self._clock = clock
        self._by_operation = {op: category for category in PROFILES[profile] for op in category.operations}
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._stats: dict[str, dict[str, Any]] = {}

    def category_of(self, operation: str) -> Category | None:
        return self._by_operation.get(operation)

    def admit(self, operation: str, account: str, region: str, pool_id: str | None) -> bool:
        """Count the call; False when it is over a rate (and so must be throttled)."""
        category = self._by_operation.get(operation)
        if category is None:
            return True
        with self._lock:
            now = self._clock()
            stats = self._stats.setdefault(operation, {"admitted": 0, "throttled": 0, "first_at": None, "last_at": None})
            account_bucket = self._bucket((account, region, category.name), category.rate, now)
            pool_bucket = None
            if category.per_pool is not None and pool_id:
                pool_bucket = self._bucket((account, region, category.name, pool_id), category.per_pool, now)
            admitted = account_bucket.take(now)
            if admitted and pool_bucket is not None and not pool_bucket.take(now):
                account_bucket.give_back()  # refused on the pool's rate: the account's token stays
                admitted = False
            if admitted:
                wall = time.time()
                stats["admitted"] += 1
                stats["first_at"] = stats["first_at"] or wall
                stats["last_at"] = wall
            else:
                stats["throttled"] += 1
            return admitted

    def _bucket(self, key: tuple[str, ...], rate: float, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, max(MIN_BURST, rate * BURST_SECONDS), now)
        return bucket

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            operations = json.loads(json.dumps(self._stats))
        return {
            "profile": self.profile,
            "categories": [
                {"name": c.name, "rate": c.rate, "per_pool": c.per_pool, "operations": sorted(c.operations)}
                for c in PROFILES[self.profile]
            ],
            "burst_seconds": BURST_SECONDS,
            "throttled": sum(op["throttled"] for op in operations.values()),
            "operations": operations,
        }

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()


class QuotaMiddleware:
    """Throttles Cognito calls beyond their category's rate; serves ``/_emulator/quotas``.

    With no enforcer (quotas off) it only answers the control endpoint, with ``"profile": null``.
    """

    def __init__(self, app: WsgiApp, enforcer: QuotaEnforcer | None) -> None:
        self.app = app
        self.enforcer = enforcer

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        if path.rstrip("/") == CONTROL_PATH:
            return self._control(environ, start_response)
        enforcer = self.enforcer
        if enforcer is None:
            return self.app(environ, start_response)
        call = identify(environ)
        if call is None or call.service != "cognito-idp" or enforcer.category_of(call.operation) is None:
            return self.app(environ, start_response)
        from .protocol import FALLBACK_REGION, account_id_for, credential_scope

        access_key, region = credential_scope(environ)
        pool_id = None
        try:
            params = json.loads(read_body(environ) or b"{}")
            if isinstance(params, dict) and isinstance(params.get("UserPoolId"), str):
                pool_id = params["UserPoolId"]
        except ValueError:
            pass
        if enforcer.admit(call.operation, account_id_for(environ, access_key), region or FALLBACK_REGION, pool_id):
            return self.app(environ, start_response)
        return error_response(start_response, call, THROTTLE_CODE, THROTTLE_MESSAGE, 400)

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            try:
                spec = json.loads(read_body(environ) or b"{}")
            except ValueError:
                return _plain(start_response, 400, {"error": "body is not JSON"})
            if not isinstance(spec, dict) or set(spec) - {"reset_stats"}:
                return _plain(start_response, 400, {"error": "the only field is 'reset_stats'"})
            if spec.get("reset_stats") and self.enforcer is not None:
                self.enforcer.reset_stats()
        elif method != "GET":
            return _plain(start_response, 405, {"error": f"method {method} not allowed"})
        if self.enforcer is None:
            return _plain(start_response, 200, {"profile": None, "throttled": 0, "operations": {}})
        return _plain(start_response, 200, self.enforcer.snapshot())


def quota_stats(endpoint_url: str) -> dict[str, Any]:
    """GET /_emulator/quotas (urllib only, for tests and benchmarks)."""
    import urllib.request

    with urllib.request.urlopen(endpoint_url.rstrip("/") + CONTROL_PATH, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


__all__ = ["COGNITO", "PROFILES", "Category", "QuotaEnforcer", "QuotaMiddleware", "quota_stats"]
