"""Prefix: cache-aware routing to the worker that most likely holds the prompt's prefix in its KV cache."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gllm.balancer.policies.base import LoadScorer, RoutingContext
from gllm.balancer.policies.prompt import prompt_text
from gllm.balancer.policies.scoring import least_loaded
from gllm.balancer.prefix_index import PrefixIndex
from gllm.balancer.registry import Worker


@dataclass(frozen=True, slots=True)
class Balance:
    """When a cached prefix is not worth the load (both thresholds must be exceeded, as in SGLang's router)."""

    abs_threshold: float = 4.0
    """The best-matching worker is skipped when its load exceeds the least loaded's by more than this ..."""
    rel_threshold: float = 1.5
    """... and is more than this many times the least loaded's."""
    cache_threshold: float = 0.3
    """Below this fraction of the prompt matched, the match is ignored and the least loaded worker is taken."""

    def overloaded(self, load: float, least: float) -> bool:
        """True when `load` is too far above the least loaded worker's `least`."""
        return load - least > self.abs_threshold and load > least * self.rel_threshold


class PrefixAffinity:
    """The longest cached prefix wins unless its worker is overloaded; then the next-longest, then the least loaded.

    Among workers with the same match the least loaded is taken, so a popular prefix spreads over the workers
    that already hold it. The choice is recorded in the index, so the next request with this prefix
    finds it. Workers not among the candidates are ignored; `forget` purges a removed one.
    """

    name: ClassVar[str] = "prefix"

    def __init__(
        self,
        scorer: LoadScorer,
        index: PrefixIndex | None = None,
        balance: Balance | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.scorer = scorer
        self.index = index or PrefixIndex()
        self.balance = balance or Balance()
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """The best-matching worker unless overloaded, else the least loaded; the choice is indexed."""
        text = prompt_text(ctx.body)
        hashes = self.index.hashes(text)
        chosen = self._pick(candidates, hashes, len(text))
        self.index.insert(chosen.address, hashes)
        return chosen

    def _pick(self, candidates: Sequence[Worker], hashes: list[int], length: int) -> Worker:
        if len(candidates) == 1:
            return candidates[0]
        scores = self.scorer.scores(candidates)
        if hashes:
            depths = self.index.match(hashes, [w.address for w in candidates])
            least = min(scores)
            floor = self.balance.cache_threshold * length / self.index.block_chars
            # Deepest match first; when its holders are overloaded, the next-deepest (a partial hit still
            # saves prefill), down to the cache threshold; then the least loaded worker.
            for depth in sorted({d for d in depths if d > 0 and d >= floor}, reverse=True):
                holders = [i for i, d in enumerate(depths) if d == depth]
                i = least_loaded(candidates, scores, self._rng, holders)
                if not self.balance.overloaded(scores[i], least):
                    return candidates[i]
        return candidates[self._least_loaded(candidates, scores)]

    def _least_loaded(self, candidates: Sequence[Worker], scores: list[float]) -> int:
        """The least loaded; among equals the one holding the fewest blocks, to spread new prefixes."""
        best = min(scores)
        ties = [i for i, score in enumerate(scores) if score == best]
        if len(ties) > 1:
            fewest = min(self.index.blocks(candidates[i].address) for i in ties)
            ties = [i for i in ties if self.index.blocks(candidates[i].address) == fewest]
        return ties[0] if len(ties) == 1 else self._rng.choice(ties)

    def forget(self, address: str) -> None:
        """Drop a removed worker's entries."""
        self.index.forget(address)
