"""The one token bucket (domain/token_bucket.py) behind the HTTP limit, the Cognito limiter and the
emulator's quotas, driven by the ``now`` each call passes."""

from __future__ import annotations

import pytest

from domain.token_bucket import TokenBucket


def test_starts_full_and_refills_over_time() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3, now=10.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(10.4)  # 0.8 of a token
    assert bucket.take(10.5)  # one token at 2 per second
    assert not bucket.take(10.5)
    assert [bucket.take(11.5) for _ in range(3)] == [True, True, False]  # two more in 1 s


def test_refill_stops_at_the_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=3, now=0.0)
    assert bucket.take(0.0)
    bucket.refill(3600.0)
    assert bucket.tokens == 3.0
    assert [bucket.take(3600.0) for _ in range(4)] == [True, True, True, False]


def test_fractional_refill_accumulates() -> None:
    bucket = TokenBucket(rate=0.25, capacity=1, now=0.0)
    assert bucket.take(0.0)
    for t in (1.0, 2.0, 3.0):  # a quarter of a token each second: never a whole one yet
        assert not bucket.take(t)
    assert bucket.tokens == pytest.approx(0.75)
    assert bucket.take(4.0)


def test_taking_several_tokens_at_once() -> None:
    bucket = TokenBucket(rate=1.0, capacity=5, now=0.0)
    assert bucket.take(0.0, n=4)
    assert not bucket.take(0.0, n=2)  # refused whole: nothing spent
    assert bucket.tokens == 1.0
    assert bucket.take(1.0, n=2)


def test_wait_time_is_when_the_tokens_are_there() -> None:
    bucket = TokenBucket(rate=4.0, capacity=2, now=0.0)
    assert bucket.wait_time(0.0) == 0.0
    bucket.take(0.0, n=2)
    assert bucket.wait_time(0.0) == pytest.approx(0.25)
    assert bucket.wait_time(0.0, n=2) == pytest.approx(0.5)
    assert bucket.wait_time(0.1) == pytest.approx(0.15)
    assert not bucket.take(0.2)
    assert bucket.take(0.25)
    assert bucket.time_to_full(0.25) == pytest.approx(0.5)


def test_sleeping_exactly_the_wait_time_gets_the_token_with_a_tolerance() -> None:
    # From 0.2 s to 0.3 s at 10/s accrue 0.9999999999999998 tokens, not 1.
    exact = TokenBucket(rate=10.0, capacity=1, now=0.2, tokens=0.0)
    tolerant = TokenBucket(rate=10.0, capacity=1, now=0.2, tokens=0.0, tolerance=1e-9)
    assert not exact.take(0.3)
    assert tolerant.take(0.3)
    assert tolerant.tokens == 0.0  # never below empty


def test_a_rate_change_counts_what_accrued_at_the_old_rate_first() -> None:
    bucket = TokenBucket(rate=10.0, capacity=10, now=0.0, tokens=0.0)
    bucket.set_rate(1.0, now=0.5)  # 5 tokens accrued at 10/s before the cut
    assert bucket.rate == 1.0
    assert bucket.tokens == pytest.approx(5.0)
    bucket.refill(1.5)  # then 1 more at 1/s
    assert bucket.tokens == pytest.approx(6.0)
    assert bucket.wait_time(1.5, n=8) == pytest.approx(2.0)


def test_a_linear_rate_change_accrues_at_the_mean_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=100, now=0.0, tokens=0.0)
    bucket.set_rate(6.0, now=2.0, linear=True)  # from 2/s to 6/s over 2 s: 8 tokens
    assert bucket.tokens == pytest.approx(8.0)
    bucket.refill(3.0)
    assert bucket.tokens == pytest.approx(14.0)


def test_time_going_backwards_is_ignored() -> None:
    bucket = TokenBucket(rate=1.0, capacity=5, now=10.0, tokens=0.0)
    bucket.refill(12.0)
    assert bucket.tokens == pytest.approx(2.0)
    assert bucket.take(8.0)  # an earlier reading: no tokens taken away, none added
    assert bucket.tokens == pytest.approx(1.0)
    assert bucket.updated_at == 12.0
    bucket.refill(13.0)  # the second from 10 s to 12 s is not counted twice
    assert bucket.tokens == pytest.approx(2.0)


def test_give_back_and_empty() -> None:
    bucket = TokenBucket(rate=1.0, capacity=2, now=0.0)
    assert bucket.take(0.0)
    bucket.give_back()
    bucket.give_back()
    assert bucket.tokens == 2.0  # never above the capacity
    bucket.empty(0.0)
    assert not bucket.take(0.5)
    assert bucket.take(1.0)


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)])
def test_a_rate_or_capacity_of_zero_or_less_is_refused(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        TokenBucket(rate, capacity, now=0.0)
    with pytest.raises(ValueError, match="greater than 0"):
        TokenBucket(1.0, 1.0, now=0.0).set_rate(0.0, now=1.0)
