"""Random: any candidate, uniformly."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from gllm.balancer.policies.base import RoutingContext
from gllm.balancer.registry import Worker


class RandomChoice:
    """Each request goes to a uniformly random candidate."""

    name: ClassVar[str] = "random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """A random candidate."""
        return candidates[0] if len(candidates) == 1 else self._rng.choice(candidates)

    def forget(self, address: str) -> None:
        """Nothing is kept per worker."""
