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
            address = await advertised_address(
                self.config.host, bound_port, self.config.balancer, self.config.advertise_address
            )
            self.registrar = Registrar(
                self.session,
                self.config.balancer,
                address,
                on_model=self.supervisor.request_load,
                interval=self.config.register_interval,
                admin_key=self.config.admin_key,
            )
            self._tasks.append(asyncio.create_task(self.registrar.run()))

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
