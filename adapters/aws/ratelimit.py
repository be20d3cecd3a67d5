"""Client-side rate limiting of Cognito calls, by quota category (AWS-FACTS.md, "Quotas").

Cognito counts user pool operations in categories with a rate per account and Region, some with a
lower rate on any one user pool too, and refuses what is over with ``TooManyRequestsException``.
Rather than send everything and retry what bounces (a retry storm that starves whoever is
unlucky), every Cognito call of a limited operation first waits for a token of its category, and
of its user pool where AWS has a per-pool rate. Each attempt does, botocore's own retries
included: the limiter hangs off the clients' ``before-sign`` event, so a call is signed only once
it may go.

- **Fair**: waiting callers queue in arrival order (FIFO): one tenant's burst of calls cannot
  overtake another's, and no herd of waiters wakes to fight for one token. One task hands the
  tokens out, and every token that is there at once in one pass: a hand-over per event-loop turn
  (as an ``asyncio.Lock`` passed from waiter to waiter does) capped the rate at one call per turn,
  which under a bulk onboarding's CPU load was below Cognito's 15/s.
- **Adaptive** (AIMD, like TCP): on a ``TooManyRequestsException`` the category's rate is halved
  (at most once per ``cooldown_s``, as one overload makes several calls bounce) and the bucket
  emptied; it then grows back by ``rate / recovery_s`` per second up to the quota. N replicas
  sharing one account each see the account's throttles and back off, so together they converge
  on the quota instead of multiplying it.

No library does this: aiolimiter (a leaky bucket) has neither a rate that changes while callers
wait nor a second, per-key limit; the API's own buckets (service/limits.py) refuse rather than
wait, and adapters do not import the service layer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.token_bucket import TokenBucket

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_BURST_S = 0.6
THROTTLE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})
_POOL_KEY = "tenants_rate_limit_pool"  # where the user pool id rides in botocore's request context


@dataclass(frozen=True, slots=True)
class Quota:
    """A category's rates: ``rate`` per account and Region, ``per_pool`` on any one user pool."""

    rate: float
    per_pool: float | None = None


# AWS's values (AWS-FACTS.md); the operations are those of each category this service sends.
DEFAULT_QUOTAS: dict[str, Quota] = {
    "UserPoolUpdate": Quota(15.0),
    "UserPoolClientUpdate": Quota(15.0, 5.0),
    "UserPoolResourceUpdate": Quota(15.0, 5.0),
    "UserCreation": Quota(50.0),
}
CATEGORY_OF: dict[str, str] = {
    **dict.fromkeys(("CreateUserPool", "UpdateUserPool", "DeleteUserPool"), "UserPoolUpdate"),
    **dict.fromkeys(("CreateUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient"), "UserPoolClientUpdate"),
    **dict.fromkeys(
        (
            "CreateGroup",
            "UpdateGroup",
            "DeleteGroup",
            "CreateUserPoolDomain",
            "UpdateUserPoolDomain",
            "DeleteUserPoolDomain",
        ),
        "UserPoolResourceUpdate",
    ),
    "AdminCreateUser": "UserCreation",
}


def parse_quotas(text: str) -> dict[str, Quota]:
    """``"UserPoolUpdate=15,UserPoolClientUpdate=15/5"``: the named categories' rates (requests/s,
    then after ``/`` the per-pool rate), the others keep AWS's. Raises ValueError naming the part."""
    quotas = dict(DEFAULT_QUOTAS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_QUOTAS:
            raise ValueError(f"{part!r}: expected Category=rate[/per_pool] with Category one of {', '.join(DEFAULT_QUOTAS)}")
        rate_text, _, pool_text = value.partition("/")
        try:
            rate = float(rate_text)
            per_pool = float(pool_text) if pool_text.strip() else DEFAULT_QUOTAS[name].per_pool
        except ValueError:
            raise ValueError(f"{part!r}: rates must be numbers") from None
        if rate <= 0 or (per_pool is not None and per_pool <= 0):
            raise ValueError(f"{part!r}: rates must be greater than 0")
        quotas[name] = Quota(rate, per_pool)
    return quotas


class AdaptiveLimiter:
    """A token bucket whose callers wait in FIFO order, with an AIMD rate.

    ``burst`` tokens at most (by default 0.6 s worth: AWS's buckets hold about a second's worth,
    and the rest is slack for the jitter between taking a token here and the call reaching AWS,
    which grows with load); ``rate`` the ceiling it recovers to.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        decrease: float = 0.5,
        recovery_s: float = 10.0,
        cooldown_s: float = 1.0,
        min_fraction: float = 0.1,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be greater than 0")
        self.ceiling = rate
        self.burst = max(1.0, round(rate * DEFAULT_BURST_S)) if burst is None else max(1.0, burst)
        self._clock = clock
        self._sleep = sleep
        self._decrease = decrease
        self._increase_per_s = rate / recovery_s
        self._cooldown_s = cooldown_s
        self._min_rate = rate * min_fraction
        # A tolerance, as the dispatcher sleeps exactly until a token is due and must then get it.
        self._bucket = TokenBucket(rate, self.burst, clock(), tolerance=1e-9)
        self._last_decrease = float("-inf")
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self.throttles = 0
        self.waited_s = 0.0

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def _refill(self, now: float) -> None:
        bucket = self._bucket
        if bucket.rate < self.ceiling:
            # Additive increase, integrated over the elapsed time (tokens at the mean rate).
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.set_rate(min(self.ceiling, bucket.rate + self._increase_per_s * elapsed), now, linear=True)
        else:
            bucket.refill(now)

    async def acquire(self) -> None:
        """Wait for a token; callers are served in the order they called."""
        started = self._clock()
        self._refill(started)
        if not self._waiters and self._bucket.take(started):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.ensure_future(self._dispatch())
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._bucket.give_back()  # granted, then cancelled: give it back
            raise
        self.waited_s += self._clock() - started

    async def _dispatch(self) -> None:
        """Hand tokens to the waiters in order, all that are there in one pass; sleep until the
        next one is due at the current rate (which a throttle may cut meanwhile)."""
        while self._waiters:
            now = self._clock()
            self._refill(now)
            while self._waiters:
                if self._waiters[0].done():  # cancelled while waiting
                    self._waiters.popleft()
                    continue
                if not self._bucket.take(now):
                    break
                self._waiters.popleft().set_result(None)
            if self._waiters:
                await self._sleep(self._bucket.wait_time(now))

    def throttled(self) -> None:
        """AWS refused a call of this category: multiplicative decrease (once per cooldown)."""
        now = self._clock()
        self.throttles += 1
        self._refill(now)
        if now - self._last_decrease < self._cooldown_s:
            return
        self._last_decrease = now
        self._bucket.set_rate(max(self._min_rate, self.rate * self._decrease), now)
        self._bucket.empty(now)  # AWS's bucket is empty: so is ours

    def snapshot(self) -> dict[str, float]:
        return {"rate": round(self.rate, 3), "ceiling": self.ceiling, "throttles": self.throttles, "waited_s": round(self.waited_s, 3)}


class CognitoRateLimiter:
    """One limiter per quota category, one per (category, user pool) where AWS has a per-pool rate.

    ``hooks()`` are botocore event hooks for AwsClients(event_hooks=...). Per-pool limiters are
    kept for the ``max_pools`` pools used last (a dropped one starts again full).
    """

    def __init__(
        self,
        quotas: Mapping[str, Quota] | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_pools: int = 10_000,
        **limiter_options: Any,
    ) -> None:
        self.quotas = dict(DEFAULT_QUOTAS if quotas is None else quotas)
        self._clock = clock
        self._sleep = sleep
        self._options = limiter_options
        self._categories = {name: self._limiter(q.rate) for name, q in self.quotas.items()}
        self._pools: OrderedDict[tuple[str, str], AdaptiveLimiter] = OrderedDict()
        self._max_pools = max_pools

    def _limiter(self, rate: float) -> AdaptiveLimiter:
        return AdaptiveLimiter(rate, clock=self._clock, sleep=self._sleep, **self._options)

    def category(self, name: str) -> AdaptiveLimiter:
        return self._categories[name]

    def _pool(self, category: str, pool_id: str | None) -> AdaptiveLimiter | None:
        per_pool = self.quotas[category].per_pool
        if per_pool is None or not pool_id:
            return None
        key = (category, pool_id)
        limiter = self._pools.pop(key, None) or self._limiter(per_pool)
        self._pools[key] = limiter
        if len(self._pools) > self._max_pools:
            self._pools.popitem(last=False)
        return limiter

    async def acquire(self, operation: str, pool_id: str | None = None) -> None:
        category = CATEGORY_OF.get(operation)
        if category is None or category not in self._categories:
            return
        pool = self._pool(category, pool_id)
        if pool is not None:
            await pool.acquire()
        await self._categories[category].acquire()

    def throttled(self, operation: str, pool_id: str | None = None) -> None:
        category = CATEGORY_OF.get(operation)
        if category is None or category not in self._categories:
            return
        # AWS does not say which of the two rates was exceeded: both back off.
        self._categories[category].throttled()
        pool = self._pool(category, pool_id)
        if pool is not None:
            pool.throttled()

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {name: limiter.snapshot() for name, limiter in self._categories.items()}

    # --- botocore event hooks ------------------------------------------------------------------

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        def remember_pool(params: Any = None, model: Any = None, context: Any = None, **_: Any) -> None:
            # Once per call, with the API parameters: the pool id, for the per-pool limit.
            if model is not None and model.name in CATEGORY_OF and isinstance(params, dict) and context is not None:
                context[_POOL_KEY] = params.get("UserPoolId")

        async def before_sign(request: Any = None, operation_name: str = "", **_: Any) -> None:
            # Every attempt, botocore's retries included, just before it is signed and sent.
            if operation_name in CATEGORY_OF:
                context = getattr(request, "context", None) or {}
                await self.acquire(operation_name, context.get(_POOL_KEY))

        def needs_retry(response: Any = None, operation: Any = None, request_dict: Any = None, **_: Any) -> None:
            # Every attempt's answer: a throttle is the signal to slow down.
            if operation is None or response is None or operation.name not in CATEGORY_OF:
                return
            code = ((response[1] or {}).get("Error") or {}).get("Code")
            if code in THROTTLE_CODES:
                context = (request_dict or {}).get("context") or {}
                self.throttled(operation.name, context.get(_POOL_KEY))

        return [
            ("before-parameter-build.cognito-identity-provider", remember_pool),
            ("before-sign.cognito-identity-provider", before_sign),
            ("needs-retry.cognito-identity-provider", needs_retry),
        ]
