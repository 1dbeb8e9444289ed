"""Round robin: the candidates in turn, whatever their load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from gllm.balancer.policies.base import RoutingContext
from gllm.balancer.registry import Worker


class RoundRobin:
    """Each request goes to the next candidate in registration order."""

    name: ClassVar[str] = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """The next candidate in turn."""
        worker = candidates[self._next % len(candidates)]
        self._next = (self._next + 1) % (1 << 30)
        return worker

    def forget(self, address: str) -> None:
        """Nothing is kept per worker."""
