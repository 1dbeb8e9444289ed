"""The composition root: `create_app(config)` builds one balancer with everything it owns."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine

from gllm.balancer.cluster import Cluster
from gllm.balancer.config import BalancerConfig
from gllm.balancer.control_routes import ControlRoutes
from gllm.balancer.dispatch import Dispatcher
from gllm.balancer.fanout import failures
from gllm.balancer.health import HealthChecker
from gllm.balancer.monitor import StatusMonitor
from gllm.balancer.openai_routes import OpenAIRoutes
from gllm.balancer.operations import ClusterOperations
from gllm.balancer.policies import make_policy
from gllm.balancer.proxy import Proxy
from gllm.balancer.registry import Registry, normalize_address
from gllm.balancer.router import Router
from gllm.http.client import UpstreamPool
from gllm.http.server import HttpRequest, ResponseWriter

log = logging.getLogger("gllm.balancer")


class BalancerApp:
    """One balancer: its cluster, its HTTP client pool and its routes; `handle` serves one request."""

    def __init__(self, config: BalancerConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.cluster = Cluster(Registry(config.breaker), make_policy(config.policy, config.check_size, rng))
        self.pool = UpstreamPool(connect_timeout=config.connect_timeout)
        self.router = Router(config.admin_key)
        self.dispatcher = Dispatcher(self.cluster, Proxy(self.pool, config.proxy), config.retry, rng)
        OpenAIRoutes(self.cluster, self.dispatcher).register(self.router)
        self.health = HealthChecker(self.cluster.registry, self.pool, config.health)
        self.monitor = StatusMonitor(
            self.cluster.registry,
            self.pool,
            config.status_interval,
            config.status_fast_interval,
            config.health_timeout,
        )
        self.operations = ClusterOperations(
            self.cluster, self.pool, self.monitor, config.load_model_timeout, config.release_timeout
        )
        ControlRoutes(self.cluster, self.pool, config, self.monitor, self.operations).register(self.router)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Serve one request."""
        await self.router(request, writer)

    async def startup(self) -> None:
        """Register the configured workers and ask them, in the background, to load the configured model."""
        for raw in self.config.existing_workers:
            self.cluster.registry.add(normalize_address(raw))
        self._spawn(self.monitor.run())
        self._spawn(self.health.run())
        if self.config.load_model:
            self.cluster.model = self.config.load_model  # known at once, even before the workers answer
            self._spawn(self._initial_load(self.config.load_model))

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _initial_load(self, model: str) -> None:
        results = await self.operations.load_model({"model_path": model, "force_reload": False})
        if not all(r.ok for r in results):
            log.error("failed to load model %s on: %s", model, failures(results))

    async def shutdown(self) -> None:
        """Stop background work and close pooled connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.close()


def create_app(config: BalancerConfig) -> BalancerApp:
    """Build a balancer from its settings; nothing is shared with any other instance."""
    return BalancerApp(config)
