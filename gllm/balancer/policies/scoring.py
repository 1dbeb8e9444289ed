"""Load scores shared by the policies: the balancer's in-flight counts, or those combined with engine figures."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.policies.base import LoadScorer
from gllm.balancer.registry import Worker


class InFlightScorer:
    """A worker's score is its number of requests open through this balancer."""

    def scores(self, workers: Sequence[Worker]) -> list[float]:
        """In-flight counts, in order."""
        return [float(w.in_flight) for w in workers]


@dataclass(frozen=True, slots=True)
class EngineWeights:
    """How engine figures turn into request equivalents (see docs/routing.md)."""

    waiting: float = 1.0
    """Extra score per request queued in the engine (it cannot start before a batch slot frees)."""
    kv: float = 4.0
    """Extra score at a full KV cache, scaled linearly from `kv_floor` (a full cache preempts or queues)."""
    kv_floor: float = 0.5
    """KV-cache use below which the cache adds nothing."""


class EngineLoadScorer:
    """In-flight counts plus the engines' own view: load from elsewhere, queue depth and KV-cache use.

    score = in_flight + external + waiting_weight * waiting + kv_weight * max(0, kv - floor) / (1 - floor), where
    `external` is running + waiting on the engine minus our in-flight count at the scrape (requests other
    balancers or clients sent). Workers without fresh figures score their in-flight count alone.
    """

    def __init__(self, table: EngineLoadTable, weights: EngineWeights | None = None) -> None:
        self.table = table
        self.weights = weights or EngineWeights()

    def score(self, worker: Worker) -> float:
        """The score of one worker."""
        load = self.table.get(worker.address)
        if load is None:
            return float(worker.in_flight)
        weights = self.weights
        score = worker.in_flight + load.external + weights.waiting * load.figures.waiting
        kv = load.figures.kv_usage
        if kv is not None and kv > weights.kv_floor:
            score += weights.kv * (kv - weights.kv_floor) / (1.0 - weights.kv_floor)
        return score

    def scores(self, workers: Sequence[Worker]) -> list[float]:
        """Scores in order."""
        return [self.score(w) for w in workers]


def least_loaded(
    candidates: Sequence[Worker],
    scores: Sequence[float],
    rng: random.Random,
    indexes: Sequence[int] | None = None,
) -> int:
    """Index of the lowest score (among `indexes` when given); ties broken at random."""
    pool = range(len(candidates)) if indexes is None else indexes
    best = min(scores[i] for i in pool)
    ties = [i for i in pool if scores[i] == best]
    return ties[0] if len(ties) == 1 else rng.choice(ties)


__all__ = ["EngineLoadScorer", "EngineWeights", "InFlightScorer", "LoadScorer", "least_loaded"]
