"""A token bucket: ``capacity`` tokens at most, refilled continuously at ``rate`` per second.

Pure arithmetic on a clock the caller reads: every method takes ``now`` (seconds, a float, from
one monotonic clock), so it can be driven by hand in tests and used under any lock or event loop.
A reading earlier than one already seen is ignored: time does not run backwards for a bucket.

Used by the per-credential HTTP limit (service/limits.py), the client-side Cognito limiter
(adapters/aws/ratelimit.py) and the emulator's Cognito quotas (adapters/aws/emulator/quotas.py);
each keeps its own policy (keys, waiting, AIMD) and only the bucket arithmetic is here.
"""

from __future__ import annotations


class TokenBucket:
    """Starts full at ``now`` (or with ``tokens``); ``take`` spends tokens if they are there.

    ``tolerance``: how far short of ``n`` tokens still counts as ``n``. Sums of ``elapsed * rate``
    fall just short of a whole token (from 0.2 s to 0.3 s at 10/s accrue 0.9999999999999998), so a
    caller that sleeps exactly ``wait_time`` and must then get its token passes a small one (1e-9).
    """

    __slots__ = ("_capacity", "_rate", "_tokens", "_tolerance", "_updated_at")

    def __init__(
        self,
        rate: float,
        capacity: float,
        now: float,
        *,
        tokens: float | None = None,
        tolerance: float = 0.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be greater than 0")
        if capacity <= 0:
            raise ValueError("capacity must be greater than 0")
        self._rate = float(rate)
        self._capacity = float(capacity)
        self._tokens = self._capacity if tokens is None else min(self._capacity, max(0.0, float(tokens)))
        self._tolerance = tolerance
        self._updated_at = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def tokens(self) -> float:
        """The tokens as of ``updated_at`` (call ``refill(now)`` first for the current count)."""
        return self._tokens

    @property
    def updated_at(self) -> float:
        return self._updated_at

    def _elapsed(self, now: float) -> float:
        elapsed = max(0.0, now - self._updated_at)
        self._updated_at = max(self._updated_at, now)
        return elapsed

    def refill(self, now: float) -> None:
        """Add what accrued since the last reading, up to the capacity."""
        self._tokens = min(self._capacity, self._tokens + self._elapsed(now) * self._rate)

    def take(self, now: float, n: float = 1.0) -> bool:
        """Spend ``n`` tokens if they are there; False (and nothing spent) if not."""
        self.refill(now)
        if self._tokens >= n - self._tolerance:
            self._tokens = max(0.0, self._tokens - n)
            return True
        return False

    def wait_time(self, now: float, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there at the current rate (0 if they are now)."""
        self.refill(now)
        if self._tokens >= n - self._tolerance:
            return 0.0
        return (n - self._tokens) / self._rate

    def time_to_full(self, now: float) -> float:
        """Seconds until the bucket is full again at the current rate."""
        self.refill(now)
        return (self._capacity - self._tokens) / self._rate

    def set_rate(self, rate: float, now: float, *, linear: bool = False) -> None:
        """From ``now`` on, refill at ``rate``. What accrued before ``now`` is counted first: at the
        old rate, or with ``linear``, at a rate that moved steadily from the old to the new one since
        the last reading (so tokens accrue at the mean of the two)."""
        if rate <= 0:
            raise ValueError("rate must be greater than 0")
        if linear:
            elapsed = self._elapsed(now)
            self._tokens = min(self._capacity, self._tokens + elapsed * (self._rate + rate) / 2)
        else:
            self.refill(now)
        self._rate = float(rate)

    def give_back(self, n: float = 1.0) -> None:
        """Return ``n`` tokens taken but not used, up to the capacity."""
        self._tokens = min(self._capacity, self._tokens + n)

    def empty(self, now: float) -> None:
        """Spend every token there is (what accrued until ``now`` too)."""
        self.refill(now)
        self._tokens = 0.0
