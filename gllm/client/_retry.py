"""Retry decisions and backoff delays: pure functions shared by the sync and async clients.

Only failures that say "try again later" are retried: connection-level errors (the request never reached the
server, or the connection broke before an answer), 429 Too Many Requests and 503 Service Unavailable. Any
other status, every other 4xx included, is the server's final answer. A read timeout is not retried either:
the server may still be generating, and asking again would double its work.
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

RETRYABLE_STATUSES = frozenset({429, 503})

# Errors raised before the server could have acted on the request, or when it dropped the connection.
RETRYABLE_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    The n-th retry (n = 0, 1, ...) waits `min(backoff_max, backoff_base * backoff_multiplier**n)`, shortened
    by a random fraction of up to `jitter` so that many clients do not retry in lockstep. A Retry-After header
    from the server raises the wait to what the server asked for, capped at `retry_after_max`.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_multiplier: float = 2.0
    backoff_max: float = 10.0
    jitter: float = 0.5
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_max must be >= 0")
        if self.backoff_multiplier < 1:
            raise ValueError("backoff_multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status means "try again later" (429 and 503 only)."""
    return status in RETRYABLE_STATUSES


def is_retryable_error(exc: BaseException) -> bool:
    """Whether a transport error is a connection failure worth retrying."""
    return isinstance(exc, RETRYABLE_ERRORS)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (0-based), jitter included."""
    exponent = min(attempt, 64)  # keeps the power finite for absurd attempt counts
    raw = min(policy.backoff_max, policy.backoff_base * policy.backoff_multiplier**exponent)
    return raw * (1.0 - policy.jitter * rng.random())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP date); None when absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until_http_date(text: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def delay_after_status(
    policy: RetryPolicy, attempt: int, status: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds to wait before retrying a response with `status`, or None when it must not be retried."""
    if attempt >= policy.max_retries or not is_retryable_status(status):
        return None
    delay = backoff_delay(policy, attempt, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_max))
    return delay


def delay_after_error(
    policy: RetryPolicy, attempt: int, exc: BaseException, rng: random.Random
) -> float | None:
    """Seconds to wait before retrying after a transport error, or None when it must not be retried."""
    if attempt >= policy.max_retries or not is_retryable_error(exc):
        return None
    return backoff_delay(policy, attempt, rng)
