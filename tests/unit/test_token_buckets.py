"""The token bucket behind the per-credential rate limit (service/limits.py), on a hand-driven clock."""

from __future__ import annotations

from service.limits import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=4, clock=clock)
    assert [buckets.take("k").allowed for _ in range(5)] == [True, True, True, True, False]
    clock.now += 0.5  # one token back at 2 per second
    assert buckets.take("k").allowed
    refused = buckets.take("k")
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after_s == 1  # 0.5 s rounded up: never 0
    assert refused.reset_s == 2  # 4 tokens at 2 per second


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10.0, burst=3, clock=clock)
    buckets.take("k")
    clock.now += 3600
    assert [buckets.take("k").allowed for _ in range(4)] == [True, True, True, False]


def test_retry_after_follows_a_slow_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=0.1, burst=1, clock=clock)
    assert buckets.take("k").allowed
    refused = buckets.take("k")
    assert refused.retry_after_s == 10
    clock.now += 9.9
    assert not buckets.take("k").allowed
    clock.now += 0.2
    assert buckets.take("k").allowed


def test_keys_do_not_share_a_bucket() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock())
    assert buckets.take("a").allowed
    assert not buckets.take("a").allowed
    assert buckets.take("b").allowed


def test_only_the_most_recent_keys_are_kept() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock(), max_keys=2)
    for key in ("a", "b", "a", "c"):  # "b" is the least recently seen when "c" arrives
        buckets.take(key)
    assert not buckets.take("a").allowed  # still remembered as empty
    assert buckets.take("b").allowed  # forgotten, so full again
