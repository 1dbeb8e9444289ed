"""What one worker app owns for its lifetime, reachable from every route through the CONTEXT key."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gllm.worker.config import WorkerConfig
from gllm.worker.registration import Registrar, advertised_address
from gllm.worker.supervisor import EngineSupervisor


@dataclass
class WorkerContext:
    """Everything with a lifetime in one worker app."""

    config: WorkerConfig
    session: aiohttp.ClientSession
    supervisor: EngineSupervisor
    started: float = field(default_factory=time.monotonic)
    registrar: Registrar | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def relay_timeout(self) -> aiohttp.ClientTimeout:
        """Timeout of one relayed OpenAI request."""
        return aiohttp.ClientTimeout(
            total=self.config.request_timeout, sock_connect=self.config.connect_timeout
        )

    async def begin(self, bound_port: int) -> None:
        """Start serving duties once the port is bound: the initial model load, then registration."""
        if self.config.model:
            self.supervisor.request_load(self.config.model)
        if self.config.balancer:
            self._tasks.append(asyncio.create_task(self._register(self.config.balancer, bound_port)))

    async def _register(self, balancer: str, bound_port: int) -> None:
        """Find the address to advertise (may need DNS), then keep registered; all in the background."""
        config = self.config
        address = await advertised_address(config.host, bound_port, balancer, config.advertise_address)
        self.registrar = Registrar(
            self.session,
            balancer,
            address,
            on_model=self._load_cluster_model,
            interval=config.register_interval,
            admin_key=config.admin_key,
        )
        await self.registrar.run()

    def _load_cluster_model(self, model: str) -> None:
        if not self.supervisor.closed:
            self.supervisor.request_load(model)

    async def close(self) -> None:
        """Stop registration, then the engine tree, then the HTTP client."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.supervisor.shutdown()
        await self.session.close()


CONTEXT = web.AppKey("gllm_worker", WorkerContext)
