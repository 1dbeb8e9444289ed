"""Least busy: the fewest in-flight requests among a random sample of `check_size` workers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from gllm.balancer.policies.base import RoutingContext
from gllm.balancer.registry import Worker


class LeastBusy:
    """Power-of-k choice; with k >= the number of candidates it is exactly the least busy worker."""

    name: ClassVar[str] = "least_busy"

    def __init__(self, check_size: int = 5, rng: random.Random | None = None) -> None:
        self.check_size = check_size
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """Pick the least busy of a random sample, ties broken at random."""
        sample = (
            candidates
            if len(candidates) <= self.check_size
            else self._rng.sample(candidates, self.check_size)
        )
        best = min(w.in_flight for w in sample)
        ties = [w for w in sample if w.in_flight == best]
        return ties[0] if len(ties) == 1 else self._rng.choice(ties)

    def forget(self, address: str) -> None:
        """Nothing is kept per worker."""
