"""A per-worker circuit breaker fed by request outcomes: closed, open, half-open.

Closed: requests flow; `failure_threshold` consecutive failures open it. Open: no requests for `open_seconds`.
Half-open: at most `half_open_max` trial requests at once; `success_threshold` successes close it, one failure
opens it again. The clock is injectable so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds of every worker's breaker."""

    failure_threshold: int = 5
    open_seconds: float = 10.0
    half_open_max: int = 2
    success_threshold: int = 2

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max < 1 or self.success_threshold < 1:
            raise ValueError("breaker thresholds must be at least 1")
        if self.open_seconds <= 0:
            raise ValueError("breaker open time must be positive")


class CircuitBreaker:
    """One worker's breaker; `allows()` before routing, `record()` when a request ends."""

    __slots__ = ("_clock", "_opened_at", "_settings", "_successes", "_trials", "failures", "state")

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0  # consecutive
        self._successes = 0
        self._trials = 0
        self._opened_at = 0.0

    def allows(self) -> bool:
        """True when a new request may go to this worker now."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self._settings.open_seconds:
                return False
            self.state = BreakerState.HALF_OPEN
            self._trials = self._successes = 0
        return self._trials < self._settings.half_open_max

    def on_start(self) -> None:
        """A request was sent (counts as a trial while half-open)."""
        if self.state is BreakerState.HALF_OPEN:
            self._trials += 1

    def release(self) -> None:
        """A request ended without telling anything about the worker (the client left): free its trial."""
        if self.state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)

    def record(self, success: bool) -> None:
        """A request ended: success, or a failure (connect error, timeout, 5xx, broken stream)."""
        if self.state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
        if success:
            self.failures = 0
            if self.state is BreakerState.HALF_OPEN:
                self._successes += 1
                if self._successes >= self._settings.success_threshold:
                    self.state = BreakerState.CLOSED
            return
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self._settings.failure_threshold:
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._successes = self._trials = 0
