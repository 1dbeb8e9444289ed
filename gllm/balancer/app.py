"""The composition root: `create_app(config)` builds one balancer with everything it owns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from pathlib import Path

from gllm.balancer.backpressure import Admission
from gllm.balancer.cluster import Cluster
from gllm.balancer.config import BalancerConfig
from gllm.balancer.control_routes import ControlRoutes
from gllm.balancer.dispatch import Dispatcher
from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.engine_metrics import EngineMetricsScraper
from gllm.balancer.fanout import failures
from gllm.balancer.health import HealthChecker
from gllm.balancer.metrics import BalancerMetrics
from gllm.balancer.monitor import StatusMonitor
from gllm.balancer.observe_routes import ObserveRoutes
from gllm.balancer.openai_routes import OpenAIRoutes
from gllm.balancer.operations import ClusterOperations
from gllm.balancer.policies import PolicyOptions, make_policy, uses_engine_metrics
from gllm.balancer.proxy import Proxy
from gllm.balancer.registry import Registry, normalize_address
from gllm.balancer.router import Router
from gllm.balancer.state_store import SavedState, StateStore
from gllm.balancer.stats import StatsWindow
from gllm.http.pool import UpstreamPool
from gllm.http.server import HttpRequest, ResponseWriter

log = logging.getLogger("gllm.balancer")


class BalancerApp:
    """One balancer: its cluster, its HTTP client pool and its routes; `handle` serves one request."""

    def __init__(self, config: BalancerConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.engine_loads = EngineLoadTable(max_age=3 * config.engine_metrics_interval)
        policy = make_policy(
            config.policy,
            config.check_size,
            rng,
            PolicyOptions.parse(config.policy_options),
            self.engine_loads,
        )
        self.cluster = Cluster(Registry(config.breaker), policy)
        self.pool = UpstreamPool(connect_timeout=config.connect_timeout)
        self.scraper = EngineMetricsScraper(
            self.pool,
            self.cluster.registry.all,
            self.engine_loads,
            interval=config.engine_metrics_interval,
            timeout=config.health_timeout,
        )
        self.store = StateStore(Path(config.state_file)) if config.state_file else None
        self.admission = Admission(config.max_queue, config.queue_timeout)
        self.stats = StatsWindow()
        self.metrics = BalancerMetrics(self.cluster, config.policy, self.stats, queue=self.admission)
        self.dispatcher = Dispatcher(
            self.cluster,
            Proxy(self.pool, config.proxy),
            config.retry,
            rng,
            self.admission,
            self.metrics,
            config.max_in_flight_per_worker,
            config.access_log,
        )
        self.health = HealthChecker(self.cluster.registry, self.pool, config.health)
        self.monitor = StatusMonitor(
            self.cluster.registry,
            self.pool,
            config.status_interval,
            config.status_fast_interval,
            config.health_timeout,
        )
        self.operations = ClusterOperations(
            self.cluster,
            self.pool,
            self.monitor,
            config.load_model_timeout,
            config.release_timeout,
            self.persist,
            self.metrics,
        )
        self.router = Router(config.admin_key)
        OpenAIRoutes(self.cluster, self.dispatcher).register(self.router)
        ControlRoutes(self.cluster, self.health, self.monitor, self.operations, self.persist).register(
            self.router
        )
        ObserveRoutes(self.cluster, self.metrics, self.stats, config).register(self.router)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Serve one request."""
        await self.router(request, writer)

    def persist(self) -> None:
        """Save the workers and the cluster model (when a state file is configured)."""
        if self.store is not None:
            addresses = tuple(w.address for w in self.cluster.registry.all())
            self.store.save(SavedState(addresses, self.cluster.model))

    async def startup(self) -> None:
        """Restore saved state, register the configured workers, start background work."""
        saved = self.store.load() if self.store is not None else SavedState()
        for raw in (*saved.workers, *self.config.existing_workers):
            self.cluster.registry.add(normalize_address(raw))
        self.cluster.model = saved.model
        if saved.workers:
            log.info(
                "restored %d worker(s) and model %s from %s", len(saved.workers), saved.model, self.store
            )
        self._spawn(self.monitor.run())
        self._spawn(self.health.run())
        self._spawn(self.stats.run(self.cluster.registry.all))
        if uses_engine_metrics(self.config.policy):
            self._spawn(self.scraper.run())
        if self.config.load_model:
            self.cluster.model = self.config.load_model  # known at once, even before the workers answer
            self._spawn(self._initial_load(self.config.load_model))
        self.persist()

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _initial_load(self, model: str) -> None:
        results = await self.operations.load_model({"model_path": model, "force_reload": False})
        if not all(r.ok for r in results):
            log.error("failed to load model %s on: %s", model, failures(results))

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait up to `timeout` s for open ones to finish; True when all did."""
        self.dispatcher.draining = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.dispatcher.idle.wait()
        if self.dispatcher.active:
            log.warning("drain deadline passed with %d request(s) still open", self.dispatcher.active)
        return self.dispatcher.active == 0

    async def shutdown(self) -> None:
        """Stop background work, flush saved state, close pooled connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.store is not None:
            await self.store.flush()
        self.pool.close()


def create_app(config: BalancerConfig) -> BalancerApp:
    """Build a balancer from its settings; nothing is shared with any other instance."""
    return BalancerApp(config)
