"""Retry budget and backoff for requests that failed before the client received anything."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """At most `max_attempts` workers per request, with exponential backoff and full jitter between them."""

    max_attempts: int = 3
    backoff_base: float = 0.02
    backoff_max: float = 0.5
    max_failovers: int = 2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_failovers < 0:
            raise ValueError("backoff and failover settings must not be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt number `attempt` + 1 (attempt counts from 1)."""
        return rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
