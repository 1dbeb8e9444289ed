"""Cluster-wide operations: load a model on every worker, release every worker's GPUs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from gllm.balancer.cluster import Cluster
from gllm.balancer.fanout import CallResult, call_all
from gllm.balancer.metrics import BalancerMetrics
from gllm.balancer.monitor import StatusMonitor, apply_control_reply
from gllm.http.pool import UpstreamPool

log = logging.getLogger("gllm.balancer")


class ClusterOperations:
    """Fans a control call out to every worker concurrently and records what the workers answer."""

    def __init__(
        self,
        cluster: Cluster,
        pool: UpstreamPool,
        monitor: StatusMonitor,
        load_timeout: float,
        release_timeout: float,
        on_change: Callable[[], None],
        metrics: BalancerMetrics,
    ) -> None:
        self._cluster = cluster
        self._pool = pool
        self._monitor = monitor
        self._load_timeout = load_timeout
        self._release_timeout = release_timeout
        self._on_change = on_change
        self._metrics = metrics

    async def load_model(self, request: dict[str, Any]) -> list[CallResult]:
        """Make `request["model_path"]` the cluster model and forward the request to every worker."""
        model = str(request["model_path"])
        self._cluster.model = model
        self._on_change()
        workers = self._cluster.registry.all()
        log.info("loading model %s on %d worker(s)", model, len(workers))
        started = time.perf_counter()
        results = await call_all(
            self._pool, workers, "POST", "/load_model", orjson.dumps(request), self._load_timeout
        )
        self._account("load_model", results, started)
        for result in results:
            apply_control_reply(result.worker, result, model)
        self._monitor.wake()
        return results

    async def release_gpus(self) -> list[CallResult]:
        """Stop every worker's engine; the cluster then has no model."""
        # Cleared so that a worker re-registering during a training step is not told to load the model again.
        self._cluster.model = None
        self._on_change()
        workers = self._cluster.registry.all()
        log.info("releasing gpus on %d worker(s)", len(workers))
        started = time.perf_counter()
        results = await call_all(self._pool, workers, "POST", "/release_gpus", b"", self._release_timeout)
        self._account("release_gpus", results, started)
        for result in results:
            apply_control_reply(result.worker, result, None)
        self._monitor.wake()
        return results

    def _account(self, name: str, results: list[CallResult], started: float) -> None:
        outcome = "ok" if all(r.ok for r in results) else "failed"
        self._metrics.operation(name, outcome, time.perf_counter() - started)
