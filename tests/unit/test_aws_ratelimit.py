"""The client-side Cognito rate limiter (adapters/aws/ratelimit.py), on a simulated clock.

``sleep`` moves the clock by exactly what the limiter asked for, so every time below is exact.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.aws.ratelimit import DEFAULT_QUOTAS, AdaptiveLimiter, CognitoRateLimiter, Quota, parse_quotas


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


async def _times(clock: SimClock, acquire: object, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await acquire()  # type: ignore[operator]
        times.append(round(clock.now, 6))
    return times


async def test_a_burst_then_the_rate(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(10.0, burst=3, clock=clock, sleep=clock.sleep)
    times = await _times(clock, limiter.acquire, 8)
    assert times == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


async def test_default_burst_is_six_tenths_of_a_second(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(15.0, clock=clock, sleep=clock.sleep)
    times = await _times(clock, limiter.acquire, 11)
    assert times[:9] == [0.0] * 9 and times[9:] == [round(1 / 15, 6), round(2 / 15, 6)]


async def test_waiters_are_served_in_arrival_order_each_woken_once(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(5.0, burst=1, clock=clock, sleep=clock.sleep)
    served: list[str] = []

    async def call(name: str) -> None:
        await limiter.acquire()
        served.append(name)

    # Tenant a sends a burst of three, then tenant b one call, then a another.
    names = ["a0", "a1", "a2", "b0", "a3"]
    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(call(name)))
        await asyncio.sleep(0)  # each arrives before the next
    await asyncio.gather(*tasks)
    assert served == names
    # No herd: one sleep per waiter, each exactly one interval.
    assert clock.sleeps == pytest.approx([0.2] * 4)


async def test_throttle_halves_the_rate_once_per_cooldown_then_it_recovers(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(10.0, burst=1, clock=clock, sleep=clock.sleep, recovery_s=10.0, cooldown_s=1.0)
    limiter.throttled()
    limiter.throttled()  # the same overload bouncing several calls: one cut
    assert limiter.rate == 5.0 and limiter.throttles == 2
    clock.now += 1.0
    limiter.throttled()
    assert limiter.rate == pytest.approx(3.0)  # grew by 1/s for 1 s, then halved: (5 + 1) / 2
    clock.now += 100.0
    await limiter.acquire()
    assert limiter.rate == 10.0  # additive increase, capped at the quota


async def test_the_rate_never_falls_below_its_floor(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(10.0, clock=clock, sleep=clock.sleep, cooldown_s=0.0, min_fraction=0.1)
    for _ in range(20):
        limiter.throttled()
    assert limiter.rate == 1.0


async def test_a_cut_applies_to_callers_already_waiting(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(10.0, burst=1, clock=clock, sleep=clock.sleep, recovery_s=1e9)
    await limiter.acquire()  # the burst is spent
    waiting = asyncio.create_task(limiter.acquire())
    while not clock.sleeps:  # until the limiter asked to sleep 0.1 s (the clock is already there)
        await asyncio.sleep(0)
    limiter.throttled()  # meanwhile: rate 5/s and the bucket emptied
    await waiting
    assert clock.sleeps[0] == pytest.approx(0.1)
    assert clock.now == pytest.approx(0.1 + 0.2)  # slept again at the new rate


async def test_per_pool_rate_and_the_shared_category_rate(clock: SimClock) -> None:
    limiter = CognitoRateLimiter(clock=clock, sleep=clock.sleep)  # UserPoolResourceUpdate: 15/s, 5/s per pool
    # One pool: a burst of 3, then 5/s.
    times = await _times(clock, lambda: limiter.acquire("CreateGroup", "pool-a"), 5)
    assert times == [0.0, 0.0, 0.0, 0.2, 0.4]
    # Other pools are not held up by pool-a's rate, only by the category's 15/s (9 at once).
    clock.now = 100.0
    limiter = CognitoRateLimiter(clock=clock, sleep=clock.sleep)
    for pool in ("p1", "p2", "p3"):
        assert await _times(clock, lambda pool=pool: limiter.acquire("CreateGroup", pool), 3) == [100.0] * 3
    # The category's 9 are used up: a fourth pool waits its turn at 15/s.
    assert await _times(clock, lambda: limiter.acquire("CreateUserPoolDomain", "p4"), 2) == [
        round(100 + 1 / 15, 6),
        round(100 + 2 / 15, 6),
    ]


async def test_categories_are_independent_and_unlimited_calls_never_wait(clock: SimClock) -> None:
    limiter = CognitoRateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(9):
        await limiter.acquire("CreateUserPool")
    for _ in range(100):
        await limiter.acquire("DescribeUserPool")
        await limiter.acquire("ListUserPools")
    await limiter.acquire("CreateUserPoolClient", "p1")
    await limiter.acquire("AdminCreateUser", "p1")
    assert clock.now == 0.0
    await limiter.acquire("UpdateUserPool")  # same category as CreateUserPool: now it waits
    assert clock.now == pytest.approx(1 / 15)


async def test_a_throttle_slows_the_category_and_the_pool(clock: SimClock) -> None:
    limiter = CognitoRateLimiter(clock=clock, sleep=clock.sleep)
    limiter.throttled("CreateGroup", "p1")
    limiter.throttled("DescribeUserPool", "p1")  # not a limited operation: ignored
    snapshot = limiter.snapshot()
    assert snapshot["UserPoolResourceUpdate"]["rate"] == 7.5 and snapshot["UserPoolResourceUpdate"]["throttles"] == 1
    assert snapshot["UserPoolUpdate"]["rate"] == 15.0
    await limiter.acquire("CreateGroup", "p1")  # both buckets were emptied: it waits for both
    assert clock.now == pytest.approx(1 / 2.5)  # the pool's rate, cut from 5 to 2.5


def test_parse_quotas() -> None:
    assert parse_quotas("") == DEFAULT_QUOTAS
    quotas = parse_quotas("UserPoolUpdate=30, UserPoolResourceUpdate=20/8")
    assert quotas["UserPoolUpdate"] == Quota(30.0, None)
    assert quotas["UserPoolResourceUpdate"] == Quota(20.0, 8.0)
    assert quotas["UserPoolClientUpdate"] == DEFAULT_QUOTAS["UserPoolClientUpdate"]
    assert parse_quotas("UserPoolClientUpdate=10")["UserPoolClientUpdate"] == Quota(10.0, 5.0)
    for bad in ("Nope=1", "UserPoolUpdate", "UserPoolUpdate=fast", "UserPoolUpdate=0", "UserPoolClientUpdate=5/-1"):
        with pytest.raises(ValueError):
            parse_quotas(bad)


class VirtualTime:
    """A discrete-event clock for several tasks at once: ``sleep`` parks the caller until the
    driver has moved the clock to its wake-up time (earliest first)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        import heapq

        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), self._seq, future))
        await future

    async def run_until(self, end: float) -> None:
        import heapq

        while True:
            for _ in range(5):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if not self._sleepers or self._sleepers[0][0] > end:
                return
            at, _, future = heapq.heappop(self._sleepers)
            self.now = at
            future.set_result(None)


async def test_replicas_sharing_an_account_converge_on_its_quota() -> None:
    """Two replicas, each pacing itself to the full 15/s, send CreateUserPool as fast as their
    limiters let them to one account whose bucket AWS keeps at 15/s: the throttles halve their
    rates, and they settle on sharing the quota instead of bouncing half their calls forever."""
    clock = VirtualTime()
    aws_tokens, aws_at = 15.0, 0.0
    log: list[tuple[float, bool]] = []  # (time, admitted) of every attempt

    def aws_admits() -> bool:
        nonlocal aws_tokens, aws_at
        aws_tokens = min(15.0, aws_tokens + (clock.now - aws_at) * 15.0)
        aws_at = clock.now
        if aws_tokens >= 1.0:
            aws_tokens -= 1.0
            return True
        return False

    async def replica() -> None:
        limiter = CognitoRateLimiter(clock=clock, sleep=clock.sleep)
        while True:
            await limiter.acquire("CreateUserPool")
            admitted = aws_admits()
            log.append((clock.now, admitted))
            if not admitted:
                limiter.throttled("CreateUserPool")
            await clock.sleep(0.05)  # the call's latency: the next one goes once it is answered

    tasks = [asyncio.create_task(replica()) for _ in range(2)]
    await clock.run_until(120.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    late = [admitted for at, admitted in log if at >= 60.0]
    admitted_rate = sum(late) / 60.0
    throttled_share = late.count(False) / len(late)
    assert admitted_rate >= 0.75 * 15.0  # together they keep the quota busy...
    assert throttled_share < 0.1  # ...with few bounces (4% here; without AIMD, half of all calls)


async def test_every_token_there_is_handed_out_in_one_pass(clock: SimClock) -> None:
    """Waiters get the tokens that accumulated while the event loop was busy all at once, in
    order, rather than one per loop turn (which capped the rate under load)."""
    limiter = AdaptiveLimiter(10.0, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.acquire()  # the burst is spent
    order: list[int] = []

    async def call(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = [asyncio.create_task(call(i)) for i in range(4)]
    await asyncio.sleep(0)
    clock.now += 0.4  # the loop was busy for 0.4 s: 4 tokens accrued
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == [0, 1, 2, 3]
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_neither_blocks_the_queue_nor_loses_a_token(clock: SimClock) -> None:
    limiter = AdaptiveLimiter(10.0, burst=1, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    await second
    assert clock.now == pytest.approx(0.1)  # the token the cancelled caller would have had
