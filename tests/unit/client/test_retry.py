"""Retry decisions and backoff delays."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gllm.client._retry import (
    RetryPolicy,
    backoff_delay,
    delay_after_error,
    delay_after_status,
    is_retryable_error,
    is_retryable_status,
    parse_retry_after,
)

NO_JITTER = RetryPolicy(max_retries=5, backoff_base=0.5, backoff_max=4.0, jitter=0.0)


@pytest.mark.unit
class TestBackoff:
    """Exponential backoff with a cap and jitter."""

    def test_doubles_from_the_base(self) -> None:
        """Without jitter the delays are base * 2**attempt."""
        rng = random.Random(0)
        assert [backoff_delay(NO_JITTER, n, rng) for n in range(3)] == [0.5, 1.0, 2.0]

    def test_is_capped(self) -> None:
        """No delay exceeds backoff_max."""
        assert backoff_delay(NO_JITTER, 10, random.Random(0)) == 4.0

    def test_absurd_attempts_stay_finite(self) -> None:
        """A huge attempt number does not overflow."""
        assert backoff_delay(NO_JITTER, 10_000, random.Random(0)) == 4.0

    @given(attempt=st.integers(0, 50), seed=st.integers(0, 2**32), jitter=st.floats(0, 1))
    def test_jitter_only_shortens(self, attempt: int, seed: int, jitter: float) -> None:
        """Jitter takes at most a `jitter` fraction off the un-jittered delay."""
        policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0, jitter=jitter)
        raw = min(8.0, 0.5 * 2.0**attempt)
        delay = backoff_delay(policy, attempt, random.Random(seed))
        assert raw * (1 - jitter) - 1e-9 <= delay <= raw + 1e-9

    def test_jitter_spreads_clients(self) -> None:
        """Different random states give different delays."""
        policy = RetryPolicy(jitter=0.5)
        delays = {backoff_delay(policy, 2, random.Random(seed)) for seed in range(20)}
        assert len(delays) > 10

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_retries": -1}, {"backoff_base": -1}, {"backoff_multiplier": 0.5}, {"jitter": 1.5}],
    )
    def test_rejects_nonsense(self, kwargs: dict[str, float]) -> None:
        """A policy that cannot work is refused at construction."""
        with pytest.raises(ValueError):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.unit
class TestWhatIsRetried:
    """Only connection errors, 429 and 503 are retried."""

    @pytest.mark.parametrize("status", [429, 503])
    def test_retryable_statuses(self, status: int) -> None:
        """429 and 503 mean "later"."""
        assert is_retryable_status(status)

    @pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 408, 413, 422, 500, 502, 504])
    def test_other_statuses_are_final(self, status: int) -> None:
        """Every other status is the server's final answer."""
        assert not is_retryable_status(status)

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ConnectError("refused"),
            httpx.ConnectTimeout("slow"),
            httpx.PoolTimeout("pool"),
            httpx.RemoteProtocolError("closed"),
            httpx.ReadError("reset"),
            httpx.WriteError("broken pipe"),
        ],
    )
    def test_connection_errors_are_retried(self, exc: Exception) -> None:
        """Connection failures are retried."""
        assert is_retryable_error(exc)

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ReadTimeout("slow"),
            httpx.WriteTimeout("slow"),
            ValueError("bug"),
            httpx.UnsupportedProtocol("x"),
        ],
    )
    def test_timeouts_and_bugs_are_not(self, exc: Exception) -> None:
        """A read timeout (the server may still be working) and programming errors are not retried."""
        assert not is_retryable_error(exc)


@pytest.mark.unit
class TestDelays:
    """How long to wait, or whether to give up."""

    def test_status_retry_uses_backoff(self) -> None:
        """A 503 without Retry-After waits the backoff."""
        assert delay_after_status(NO_JITTER, 1, 503, None, random.Random(0)) == 1.0

    def test_retry_after_raises_the_wait(self) -> None:
        """Retry-After longer than the backoff is honoured."""
        assert delay_after_status(NO_JITTER, 0, 503, 3.0, random.Random(0)) == 3.0

    def test_retry_after_never_shortens_backoff(self) -> None:
        """Retry-After: 0 does not make the client hammer the server."""
        assert delay_after_status(NO_JITTER, 2, 429, 0.0, random.Random(0)) == 2.0

    def test_retry_after_is_capped(self) -> None:
        """A server asking for an hour gets retry_after_max."""
        policy = RetryPolicy(jitter=0.0, retry_after_max=5.0)
        assert delay_after_status(policy, 0, 503, 3600.0, random.Random(0)) == 5.0

    def test_gives_up_after_max_retries(self) -> None:
        """The attempt numbered max_retries is the last."""
        assert delay_after_status(NO_JITTER, 5, 503, None, random.Random(0)) is None
        assert delay_after_error(NO_JITTER, 5, httpx.ConnectError("x"), random.Random(0)) is None

    def test_never_retries_a_400(self) -> None:
        """A client error is not retried, even on the first attempt."""
        assert delay_after_status(NO_JITTER, 0, 400, 1.0, random.Random(0)) is None

    def test_zero_retries(self) -> None:
        """max_retries=0 turns retrying off."""
        policy = RetryPolicy(max_retries=0)
        assert delay_after_error(policy, 0, httpx.ConnectError("x"), random.Random(0)) is None

    def test_connection_error_uses_backoff(self) -> None:
        """A refused connection waits the backoff."""
        assert delay_after_error(NO_JITTER, 0, httpx.ConnectError("x"), random.Random(0)) == 0.5


@pytest.mark.unit
class TestRetryAfterHeader:
    """Retry-After in seconds or as an HTTP date."""

    @pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0)])
    def test_seconds(self, value: str, seconds: float) -> None:
        """Delta-seconds, negative clamped to zero."""
        assert parse_retry_after(value) == seconds

    @pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf"])
    def test_invalid_is_ignored(self, value: str | None) -> None:
        """Absent or unreadable values give None."""
        assert parse_retry_after(value) is None

    def test_http_date(self) -> None:
        """An HTTP date gives the seconds until then."""
        now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
        when = format_datetime(now + timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(when, now=now) == pytest.approx(30.0)

    def test_http_date_in_the_past(self) -> None:
        """A date already past means retry now."""
        now = datetime(2030, 1, 1, tzinfo=UTC)
        assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0.0
