"""Deadlines for the wait_for_* loops and what a failed probe means, without I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gllm.client._retry import is_retryable_status
from gllm.client.errors import GLLMConnectionError, GLLMTimeoutError, RemoteError

PROBE_TIMEOUT_MAX = 5.0  # one probe never waits longer than this, whatever the overall timeout
PROBE_TIMEOUT_MIN = 0.05


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time `timeout` seconds after creation."""

    timeout: float
    start: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.timeout < 0:
            raise ValueError("timeout must be >= 0")

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.start + self.timeout - time.monotonic())

    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0.0

    def probe_timeout(self, check_interval: float) -> float:
        """Timeout of one probe: short, and never much past the deadline."""
        return max(PROBE_TIMEOUT_MIN, min(self.remaining(), PROBE_TIMEOUT_MAX, max(check_interval, 1.0)))

    def pause(self, check_interval: float) -> float:
        """How long to sleep before the next probe: the interval, cut short by the deadline."""
        return max(0.0, min(check_interval, self.remaining()))


def is_transient(exc: BaseException) -> bool:
    """Whether a failed probe means "not yet" (unreachable, slow, busy) rather than a real error."""
    if isinstance(exc, GLLMConnectionError | GLLMTimeoutError):
        return True
    return isinstance(exc, RemoteError) and is_retryable_status(exc.status_code)


def check_interval_ok(check_interval: float) -> None:
    """Refuse a non-positive polling interval, which would spin."""
    if check_interval <= 0:
        raise ValueError("check_interval must be > 0")


def is_healthy_status(status: int | None) -> bool:
    """Whether a /health probe's status means healthy: 200 only."""
    return status == 200


def is_live_status(status: int | None) -> bool:
    """Whether a /health probe means the server is up: any answer at all."""
    return status is not None
