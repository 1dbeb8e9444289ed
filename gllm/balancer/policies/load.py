"""Load: the lowest combined score of the balancer's in-flight counts and the engines' own figures."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from gllm.balancer.policies.base import LoadScorer, RoutingContext
from gllm.balancer.policies.scoring import least_loaded
from gllm.balancer.registry import Worker


class LoadAware:
    """Every candidate is scored (see EngineLoadScorer); the lowest wins, ties at random."""

    name: ClassVar[str] = "load"

    def __init__(self, scorer: LoadScorer, rng: random.Random | None = None) -> None:
        self.scorer = scorer
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """The least loaded candidate."""
        if len(candidates) == 1:
            return candidates[0]
        return candidates[least_loaded(candidates, self.scorer.scores(candidates), self._rng)]

    def forget(self, address: str) -> None:
        """Engine figures live in the shared table, which the scraper prunes."""
