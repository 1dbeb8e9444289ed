"""Retry budget and backoff: exponential, capped, with full jitter."""

from __future__ import annotations

import random

import pytest

from gllm.balancer.retry import RetrySettings


@pytest.mark.unit
class TestBackoff:
    """backoff(attempt) lies in [0, min(max, base * 2**(attempt-1))]."""

    @pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 10, 40])
    def test_bounds(self, attempt: int) -> None:
        """Every draw stays within the exponential bound and the cap."""
        settings = RetrySettings(backoff_base=0.02, backoff_max=0.5)
        rng = random.Random(attempt)
        bound = min(0.5, 0.02 * 2 ** (attempt - 1))
        draws = [settings.backoff(attempt, rng) for _ in range(500)]
        assert all(0.0 <= d <= bound for d in draws)
        assert max(draws) > bound * 0.8  # full jitter actually spreads over the range
        assert min(draws) < bound * 0.2

    def test_grows_then_caps(self) -> None:
        """The upper bound doubles per attempt until the cap."""
        settings = RetrySettings(backoff_base=0.1, backoff_max=0.5)

        class Top(random.Random):
            def uniform(self, a: float, b: float) -> float:
                return b

        rng = Top()
        assert [settings.backoff(a, rng) for a in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])

    def test_zero_base_means_no_wait(self) -> None:
        """backoff_base=0 retries at once."""
        assert RetrySettings(backoff_base=0.0).backoff(3, random.Random(1)) == 0.0

    def test_deterministic_with_seed(self) -> None:
        """The same seed gives the same waits (the balancer's --seed makes runs repeatable)."""
        settings = RetrySettings()
        first = [settings.backoff(a, random.Random(7)) for a in range(1, 5)]
        assert first == [settings.backoff(a, random.Random(7)) for a in range(1, 5)]


@pytest.mark.unit
class TestSettings:
    """Invalid budgets are refused."""

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_attempts": 0}, {"backoff_base": -0.1}, {"backoff_max": -1.0}, {"max_failovers": -1}],
    )
    def test_invalid(self, kwargs: dict[str, float]) -> None:
        """max_attempts below 1 and negative backoff or failover counts raise ValueError."""
        with pytest.raises(ValueError, match="must"):
            RetrySettings(**kwargs)  # type: ignore[arg-type]

    def test_defaults(self) -> None:
        """Defaults: 3 attempts, short backoff, 2 failovers."""
        settings = RetrySettings()
        assert settings.max_attempts == 3
        assert settings.max_failovers == 2
        assert 0 < settings.backoff_base <= settings.backoff_max
