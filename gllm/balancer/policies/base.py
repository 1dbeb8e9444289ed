"""The routing policy protocol: a pure choice of one worker among candidates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from gllm.balancer.registry import Worker


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """What a policy may know about a request: never the HTTP layer itself."""

    model: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Sequence[tuple[bytes, bytes]] = ()  # as received: (lower-case name, value)

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (`name` in lower case), if present."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Policy(Protocol):
    """Chooses one worker among the candidates (all routable for this request); does no I/O."""

    name: ClassVar[str]

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """Return one of `candidates` (never empty)."""
        ...

    def forget(self, address: str) -> None:
        """Drop any state kept for a worker that was removed from the balancer."""
        ...


class LoadScorer(Protocol):
    """How loaded each worker is, in request equivalents (lower is better); pure, no I/O."""

    def scores(self, workers: Sequence[Worker]) -> list[float]:
        """One score per worker, in order."""
        ...
