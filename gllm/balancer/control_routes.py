"""Control routes: health, worker registration, model loading and GPU release across the cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gllm.balancer.cluster import Cluster
from gllm.balancer.fanout import failures
from gllm.balancer.health import HealthChecker
from gllm.balancer.monitor import StatusMonitor
from gllm.balancer.operations import ClusterOperations
from gllm.balancer.registry import normalize_address
from gllm.balancer.responses import read_json_object, send_error, send_json, send_text
from gllm.balancer.router import Router
from gllm.http.server import HttpRequest, ResponseWriter

log = logging.getLogger("gllm.balancer")


class ControlRoutes:
    """`/health`, `/add_worker`, `/remove_worker`, `/workers`, `/load_model`, `/release_gpus`."""

    def __init__(
        self,
        cluster: Cluster,
        health: HealthChecker,
        monitor: StatusMonitor,
        operations: ClusterOperations,
        on_change: Callable[[], None],
    ) -> None:
        self._cluster = cluster
        self._health = health
        self._monitor = monitor
        self._operations = operations
        self._on_change = on_change

    def register(self, router: Router) -> None:
        """Add these routes to the router."""
        router.add("GET", "/health", self.health)
        router.add("GET", "/workers", self.workers)
        router.add("POST", "/add_worker", self.add_worker, admin=True)
        router.add("POST", "/remove_worker", self.remove_worker, admin=True)
        router.add("POST", "/load_model", self.load_model, admin=True)
        router.add("POST", "/release_gpus", self.release_gpus, admin=True)

    async def health(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """200 when every worker's /health answers 200, probed concurrently with a short timeout."""
        if not len(self._cluster.registry):
            send_text(writer, 503, "No workers available")
            return
        # The same probe as the background checks, so these results count toward ejection like theirs.
        results = await self._health.probe_all()
        if all(r.ok for r in results):
            send_text(writer, 200, "All workers healthy")
        else:
            send_text(writer, 503, "Worker unhealthy")

    async def workers(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Every registered worker with its in-flight count and health."""
        send_json(writer, 200, [w.to_json() for w in self._cluster.registry.all()])

    async def add_worker(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Register a worker; answer with the cluster model it should load (empty when none)."""
        address = self._address(request, writer)
        if address is None:
            return
        _, new = self._cluster.registry.add(address)
        if new:
            log.info("worker registered: %s", address)
            self._monitor.wake()
            self._on_change()
        send_text(writer, 200, self._cluster.model or "")

    async def remove_worker(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Unregister a worker; its in-flight requests finish normally."""
        address = self._address(request, writer)
        if address is None:
            return
        if self._cluster.registry.remove(address) is None:
            send_error(writer, 404, f"Unknown worker {address}", "worker_not_found")
            return
        self._cluster.policy.forget(address)
        log.info("worker removed: %s", address)
        self._on_change()
        send_text(writer, 200, f"Worker {address} removed")

    def _address(self, request: HttpRequest, writer: ResponseWriter) -> str | None:
        payload = read_json_object(request, writer)
        if payload is None:
            return None
        try:
            return normalize_address(payload.get("address"))
        except ValueError as exc:
            send_error(writer, 400, str(exc), "invalid_address")
            return None

    async def load_model(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Make `model_path` the cluster model and ask every worker to load it, concurrently."""
        payload = read_json_object(request, writer)
        if payload is None:
            return
        model = payload.get("model_path")
        if not isinstance(model, str) or not model.strip():
            send_error(writer, 400, "'model_path' must be a non-empty string", "invalid_model_path")
            return
        if not isinstance(payload.get("force_reload", False), bool):
            send_error(writer, 400, "'force_reload' must be true or false", "invalid_force_reload")
            return
        results = await self._operations.load_model(payload)
        if all(r.ok for r in results):
            send_text(writer, 200, "Model load requested")
        else:
            send_text(writer, 500, f"Failed to load model {model} on: {failures(results)}")

    async def release_gpus(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Ask every worker to stop its engine, concurrently; the cluster then has no model."""
        results = await self._operations.release_gpus()
        if all(r.ok for r in results):
            send_text(writer, 200, "Gpus released")
        else:
            send_text(writer, 500, f"Failed to release gpus on: {failures(results)}")
