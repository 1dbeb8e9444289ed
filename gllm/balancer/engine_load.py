"""The engines' own load figures (queue, running, KV cache), by worker address, with their age.

Written by the metrics scraper, read by the load-aware scoring of the policies; figures older than `max_age`
count as unknown, so a worker whose scrapes fail is scored on the balancer's own counts alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """What one scrape of an engine's metrics says about its load."""

    running: float
    """Requests in the engine's batch (vllm:num_requests_running)."""
    waiting: float
    """Requests queued in the engine (vllm:num_requests_waiting)."""
    kv_usage: float | None = None
    """Fraction of the KV cache in use, 0..1 (vllm:kv_cache_usage_perc), when the engine reports it."""


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """Figures of one engine, when they were taken, and this balancer's in-flight count at that moment."""

    figures: EngineFigures
    in_flight: int
    at: float

    @property
    def external(self) -> float:
        """Requests on the engine that did not come through this balancer (other balancers, direct clients)."""
        return max(0.0, self.figures.running + self.figures.waiting - self.in_flight)


class EngineLoadTable:
    """Latest engine figures per worker address; stale ones are ignored."""

    def __init__(self, max_age: float = 5.0, clock: Clock = time.monotonic) -> None:
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self.max_age = max_age
        self.clock = clock
        self._loads: dict[str, EngineLoad] = {}

    def update(self, address: str, figures: EngineFigures, in_flight: int) -> None:
        """Record a scrape of `address` taken now, while `in_flight` of our requests were open on it."""
        self._loads[address] = EngineLoad(figures, in_flight, self.clock())

    def get(self, address: str) -> EngineLoad | None:
        """The worker's figures if they are fresh, else None."""
        load = self._loads.get(address)
        if load is None or self.clock() - load.at > self.max_age:
            return None
        return load

    def forget(self, address: str) -> None:
        """Drop a worker's figures."""
        self._loads.pop(address, None)

    def retain(self, addresses: Iterable[str]) -> None:
        """Drop the figures of every worker not in `addresses`."""
        keep = set(addresses)
        for address in [a for a in self._loads if a not in keep]:
            del self._loads[address]

    def __len__(self) -> int:
        return len(self._loads)
