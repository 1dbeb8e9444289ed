"""Active health checks: probe every worker's /health on an interval; eject after repeated failures only."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gllm.balancer.fanout import CallResult, call_all
from gllm.balancer.registry import Registry, Worker
from gllm.http.pool import UpstreamPool

log = logging.getLogger("gllm.balancer")


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """How often to probe, how long to wait, and how many results in a row change a worker's health."""

    interval: float = 5.0
    timeout: float = 2.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("health check interval and timeout must be positive")
        if self.unhealthy_threshold < 1 or self.healthy_threshold < 1:
            raise ValueError("health thresholds must be at least 1")


def record_probe(worker: Worker, result: CallResult, settings: HealthSettings) -> None:
    """Count one probe: `healthy` is its result; `ejected` flips only after enough results in a row.

    A worker that says it is not serving (loading, failed, released) answers 503 by design: that is its state,
    known from its status route, not an outage, so its failed probes are counted but never eject it (and its
    ejection is cleared when it reports ready again, see monitor.apply_status).
    """
    worker.healthy = result.ok
    if result.ok:
        worker.health_successes += 1
        worker.health_failures = 0
        if worker.ejected and worker.health_successes >= settings.healthy_threshold:
            log.info("worker %s is healthy again and takes requests", worker.address)
            worker.ejected = False
        return
    worker.health_failures += 1
    worker.health_successes = 0
    worker.last_error = f"health check failed: {result.describe()}"
    if worker.state_allows and not worker.ejected and worker.health_failures >= settings.unhealthy_threshold:
        log.warning("worker %s ejected after %d failed health checks", worker.address, worker.health_failures)
        worker.ejected = True
        worker.ejections += 1


class HealthChecker:
    """Background task probing every worker concurrently."""

    def __init__(self, registry: Registry, pool: UpstreamPool, settings: HealthSettings) -> None:
        self._registry = registry
        self._pool = pool
        self.settings = settings

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            await self.probe_all()
            await asyncio.sleep(self.settings.interval)

    async def probe_all(self) -> list[CallResult]:
        """Probe every worker once and record the results."""
        workers = self._registry.all()
        results = await call_all(self._pool, workers, "GET", "/health", b"", self.settings.timeout)
        for result in results:
            record_probe(result.worker, result, self.settings)
        return results
