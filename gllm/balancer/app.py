"""The composition root: `create_app(config)` builds one balancer with everything it owns."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine

import orjson

from gllm.balancer.cluster import Cluster
from gllm.balancer.config import BalancerConfig
from gllm.balancer.control_routes import ControlRoutes
from gllm.balancer.fanout import call_all, failures
from gllm.balancer.openai_routes import OpenAIRoutes
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
        self.cluster = Cluster(Registry(), make_policy(config.policy, config.check_size, rng))
        self.pool = UpstreamPool(connect_timeout=config.connect_timeout)
        self.router = Router(config.admin_key)
        OpenAIRoutes(self.cluster, Proxy(self.pool, config.request_timeout)).register(self.router)
        ControlRoutes(self.cluster, self.pool, config).register(self.router)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Serve one request."""
        await self.router(request, writer)

    async def startup(self) -> None:
        """Register the configured workers and ask them, in the background, to load the configured model."""
        for raw in self.config.existing_workers:
            self.cluster.registry.add(normalize_address(raw))
        if self.config.load_model:
            self.cluster.model = self.config.load_model
            self._spawn(self._initial_load(self.config.load_model))

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _initial_load(self, model: str) -> None:
        body = orjson.dumps({"model_path": model, "force_reload": False})
        workers = self.cluster.registry.all()
        results = await call_all(
            self.pool, workers, "POST", "/load_model", body, self.config.load_model_timeout
        )
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
