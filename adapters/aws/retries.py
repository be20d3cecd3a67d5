"""botocore's retries, minus quotas: the one layer that retries a throttled AWS call.

botocore's ``standard`` mode (and ``adaptive``, which adds a client-side rate limiter to it)
counts ``LimitExceededException`` as a throttle: "1,000 user pools per account reached" would be
retried with backoff as if the quota could come back in a second. botocore has no setting for its
list of retryable codes, so the clients are built with botocore's own handler made inert
(``total_max_attempts=1``) and :func:`register` puts in its place, on the client's ``needs-retry``
event, botocore's standard handler built from botocore's own parts (``RetryHandler``,
``ExponentialBackoff``, the retry quota, ``StandardRetryConditions``) with one checker changed:

- a quota error (domain.errors.QUOTA_CODES) is never retried;
- everything botocore's standard mode retries still is (throttles such as Cognito's
  ``TooManyRequestsException`` and IAM's ``Throttling``, 5xx, connection errors and time-outs,
  errors the service model marks retryable), and so are the concurrent-modification errors of
  AWS-FACTS.md ("retry") that botocore does not know;
- budget: ``max_attempts`` attempts in all, the first included, with botocore's backoff (full
  jitter, ``rand() * min(2 ** (attempt - 1), 20)`` s) and botocore's retry quota (a retry costs 5
  of 500 tokens per client, a success gives one back: under a sustained outage it stops retrying
  rather than storming).

In ``adaptive`` mode the client-side rate limiter is aiobotocore's, with a throttle detector that
does not count a quota error as a throttle either.

:func:`record_attempts` stamps on a connection error (which carries no response metadata) how many
attempts the call made, so that the error translation (adapters/aws/errors.py) can tell the
domain whether the call was retried already.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.retries import adaptive as aio_adaptive
from aiobotocore.retries import bucket as aio_bucket
from aiobotocore.retries.standard import (
    AioRetryHandler,
    AioRetryPolicy,
    AioStandardRetryConditions,
)
from botocore.retries import quota, standard, throttling
from botocore.retries.adaptive import RateClocker

from domain.errors import QUOTA_CODES

# Retryable per AWS-FACTS.md, unknown to botocore's standard mode.
EXTRA_RETRYABLE_CODES = frozenset({"ConcurrentModificationException", "ConcurrentModification"})
ATTEMPTS_ATTRIBUTE = "tenants_attempts"


class _Conditions(AioStandardRetryConditions):
    """botocore's standard conditions, without quota errors, with EXTRA_RETRYABLE_CODES."""

    def __init__(self, max_attempts: int) -> None:
        super().__init__(max_attempts=max_attempts)
        self._max_attempts = max_attempts

    async def is_retryable(self, context: standard.RetryContext) -> bool:
        code = context.get_error_code()
        if code in QUOTA_CODES:
            return False
        if code in EXTRA_RETRYABLE_CODES:
            return bool(context.attempt_number < self._max_attempts)
        return bool(await super().is_retryable(context))


class _ThrottlingDetector(standard.ThrottlingErrorDetector):
    """What adaptive mode slows down for: botocore's throttles, quota errors excepted."""

    def is_throttling_error(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        parsed = response[1] if response else None
        code = ((parsed or {}).get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
        if code in QUOTA_CODES:
            return False
        return bool(super().is_throttling_error(**kwargs))


def register(client: Any, *, max_attempts: int, mode: str = "standard") -> None:
    """Retry ``client``'s calls up to ``max_attempts`` attempts in all (module docstring). The
    client must have been built with botocore's retries off (``total_max_attempts=1``)."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    if max_attempts > 1:
        retry_quota = standard.RetryQuotaChecker(quota.RetryQuota())
        events.register(f"after-call.{service}", retry_quota.release_retry_quota)
        handler = AioRetryHandler(
            retry_policy=AioRetryPolicy(
                retry_checker=_Conditions(max_attempts), retry_backoff=standard.ExponentialBackoff()
            ),
            retry_event_adapter=standard.RetryEventAdapter(),
            retry_quota=retry_quota,
        )
        events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=f"tenants-retries-{service}")
    if mode == "adaptive":
        _register_adaptive(client)
    events.register(f"needs-retry.{service}", record_attempts, unique_id=f"tenants-attempts-{service}")


def _register_adaptive(client: Any) -> None:
    # aiobotocore.retries.adaptive.register_retry_handler, with _ThrottlingDetector.
    clock = aio_bucket.Clock()
    limiter = aio_adaptive.AsyncClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=RateClocker(clock),
        token_bucket=aio_bucket.AsyncTokenBucket(max_rate=1, clock=clock),
        throttling_detector=_ThrottlingDetector(retry_event_adapter=standard.RetryEventAdapter()),
        clock=clock,
    )
    client.meta.events.register("before-send", limiter.on_sending_request)
    client.meta.events.register("needs-retry", limiter.on_receiving_response)


def record_attempts(caught_exception: BaseException | None = None, attempts: int = 1, **_: Any) -> None:
    """On every attempt that raised: its number, on the exception botocore raises if it is the last."""
    if caught_exception is not None:
        setattr(caught_exception, ATTEMPTS_ATTRIBUTE, attempts)


def attempts_of(exc: BaseException) -> int:
    """How many times the call that raised ``exc`` was sent (1 when nothing says otherwise)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        retried = (response.get("ResponseMetadata") or {}).get("RetryAttempts")
        if isinstance(retried, int):
            return retried + 1
    stamped = getattr(exc, ATTEMPTS_ATTRIBUTE, 1)
    return stamped if isinstance(stamped, int) and stamped >= 1 else 1
