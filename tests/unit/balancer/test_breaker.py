"""The per-worker circuit breaker: closed, open, half-open, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import pytest

from gllm.balancer.breaker import BreakerSettings, BreakerState, CircuitBreaker


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def make(
    clock: FakeClock, failures: int = 3, open_s: float = 10.0, trials: int = 2, successes: int = 2
) -> CircuitBreaker:
    """A breaker with small thresholds on `clock`."""
    return CircuitBreaker(BreakerSettings(failures, open_s, trials, successes), clock)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read through a call (so the type checker does not pin it between steps)."""
    return breaker.state


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Record `times` requests that started and failed."""
    for _ in range(times):
        breaker.on_start()
        breaker.record(False)


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    """Record `times` requests that started and succeeded."""
    for _ in range(times):
        breaker.on_start()
        breaker.record(True)


def half_open(clock: FakeClock) -> CircuitBreaker:
    """A breaker that opened and whose open time has just passed (first `allows()` moves it to half-open)."""
    breaker = make(clock)
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.allows()
    assert state(breaker) is BreakerState.HALF_OPEN
    return breaker


@pytest.mark.unit
class TestClosed:
    """A closed breaker lets everything through and counts consecutive failures."""

    def test_new_breaker_is_closed_and_allows(self) -> None:
        """Fresh: closed, no failures, requests allowed."""
        breaker = make(FakeClock())
        assert state(breaker) is BreakerState.CLOSED
        assert breaker.failures == 0
        assert breaker.allows()

    def test_opens_after_threshold_consecutive_failures(self) -> None:
        """N-1 failures keep it closed; the N-th opens it."""
        breaker = make(FakeClock(), failures=3)
        fail(breaker, 2)
        assert state(breaker) is BreakerState.CLOSED
        assert breaker.allows()
        fail(breaker)
        assert state(breaker) is BreakerState.OPEN
        assert not breaker.allows()

    def test_success_resets_the_consecutive_count(self) -> None:
        """Failures separated by a success never reach the threshold."""
        breaker = make(FakeClock(), failures=3)
        for _ in range(5):
            fail(breaker, 2)
            succeed(breaker)
            assert breaker.failures == 0
        assert state(breaker) is BreakerState.CLOSED

    def test_threshold_of_one_opens_on_first_failure(self) -> None:
        """With failure_threshold=1, a single failure opens the breaker."""
        breaker = make(FakeClock(), failures=1)
        fail(breaker)
        assert state(breaker) is BreakerState.OPEN


@pytest.mark.unit
class TestOpen:
    """An open breaker refuses requests until its open time has passed."""

    def test_refuses_until_open_seconds_pass(self) -> None:
        """Just before open_seconds: refused; at open_seconds: allowed as half-open."""
        clock = FakeClock()
        breaker = make(clock, open_s=10.0)
        fail(breaker, 3)
        clock.advance(9.99)
        assert not breaker.allows()
        assert state(breaker) is BreakerState.OPEN
        clock.advance(0.01)
        assert breaker.allows()
        assert state(breaker) is BreakerState.HALF_OPEN

    def test_open_time_counts_from_the_opening_failure(self) -> None:
        """The wait starts when the breaker opened, not when the first failure happened."""
        clock = FakeClock()
        breaker = make(clock, failures=3, open_s=10.0)
        fail(breaker, 2)
        clock.advance(8.0)
        fail(breaker)
        clock.advance(8.0)
        assert not breaker.allows()
        clock.advance(2.0)
        assert breaker.allows()


@pytest.mark.unit
class TestHalfOpen:
    """Half-open admits a limited number of trials; successes close it, one failure reopens it."""

    def test_trial_limit(self) -> None:
        """At most half_open_max trials at once; a finished trial frees its slot."""
        breaker = half_open(FakeClock())
        breaker.on_start()
        assert breaker.allows()
        breaker.on_start()
        assert not breaker.allows()  # two trials in flight: the limit
        breaker.record(True)
        assert breaker.allows()  # one ended: a slot is free again

    def test_closes_after_success_threshold(self) -> None:
        """success_threshold successful trials close the breaker."""
        breaker = half_open(FakeClock())
        succeed(breaker)
        assert state(breaker) is BreakerState.HALF_OPEN
        succeed(breaker)
        assert state(breaker) is BreakerState.CLOSED
        assert breaker.failures == 0
        assert breaker.allows()

    def test_failure_reopens_at_once(self) -> None:
        """One failed trial reopens the breaker, for a fresh open period."""
        clock = FakeClock()
        breaker = half_open(clock)
        succeed(breaker)
        fail(breaker)
        assert state(breaker) is BreakerState.OPEN
        assert not breaker.allows()
        clock.advance(9.0)
        assert not breaker.allows()
        clock.advance(1.0)
        assert breaker.allows()
        assert state(breaker) is BreakerState.HALF_OPEN

    def test_successes_do_not_carry_over_a_reopen(self) -> None:
        """Successes before a reopen do not count towards closing after it."""
        clock = FakeClock()
        breaker = half_open(clock)
        succeed(breaker)
        fail(breaker)
        clock.advance(10.0)
        assert breaker.allows()
        succeed(breaker)
        assert state(breaker) is BreakerState.HALF_OPEN
        succeed(breaker)
        assert state(breaker) is BreakerState.CLOSED

    def test_closed_breaker_needs_full_threshold_again(self) -> None:
        """After closing, opening again needs failure_threshold failures in a row."""
        clock = FakeClock()
        breaker = half_open(clock)
        succeed(breaker, 2)
        fail(breaker, 2)
        assert state(breaker) is BreakerState.CLOSED
        fail(breaker)
        assert state(breaker) is BreakerState.OPEN

    def test_trial_count_never_goes_negative(self) -> None:
        """A record without a matching start (a request begun while closed) does not free extra slots."""
        breaker = half_open(FakeClock())
        breaker.record(True)  # began before the breaker opened
        breaker.on_start()
        breaker.on_start()
        assert not breaker.allows()


@pytest.mark.unit
class TestSettings:
    """Invalid thresholds are refused when the settings are built."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"failure_threshold": 0},
            {"half_open_max": 0},
            {"success_threshold": 0},
            {"open_seconds": 0.0},
            {"open_seconds": -1.0},
        ],
    )
    def test_invalid(self, kwargs: dict[str, float]) -> None:
        """Thresholds below 1 and a non-positive open time raise ValueError."""
        with pytest.raises(ValueError, match="breaker"):
            BreakerSettings(**kwargs)  # type: ignore[arg-type]

    def test_defaults_are_valid(self) -> None:
        """The defaults build."""
        settings = BreakerSettings()
        assert settings.failure_threshold >= 1
        assert settings.open_seconds > 0
