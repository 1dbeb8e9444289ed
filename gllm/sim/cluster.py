"""Many simulated engines in one process: an async SimCluster and a background-thread twin for sync code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from gllm.sim.config import SimConfig
from gllm.sim.server import EngineServer

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else the default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@dataclass(frozen=True, slots=True)
class EngineHandle:
    """Where a started engine listens; safe to share between threads."""

    model: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8000 (the OpenAI routes are under /v1)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI clients."""
        return f"{self.url}/v1"


class SimCluster:
    """Start, await and stop several engines in the running event loop: `async with SimCluster(configs)`."""

    def __init__(self, configs: Sequence[SimConfig], wait_ready: bool = True) -> None:
        self.servers = [EngineServer(config) for config in configs]
        self._wait_ready = wait_ready
        self._started: list[EngineServer] = []

    @property
    def handles(self) -> list[EngineHandle]:
        """One handle per engine, in the order of the configs."""
        return [EngineHandle(s.config.name, s.config.host, s.port) for s in self.servers]

    async def start(self) -> list[EngineHandle]:
        """Bind every engine (stopping those already started if one fails); return their handles."""
        try:
            for server in self.servers:
                await server.start()
                self._started.append(server)
        except BaseException:
            await self.stop()
            raise
        return self.handles

    async def wait_ready(self) -> None:
        """Return once every engine has loaded its model."""
        await asyncio.gather(*(server.wait_ready() for server in self.servers))

    async def stop(self) -> None:
        """Stop every started engine."""
        started, self._started = self._started, []
        await asyncio.gather(*(server.stop() for server in started), return_exceptions=True)

    async def __aenter__(self) -> SimCluster:
        await self.start()
        if self._wait_ready:
            await self.wait_ready()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def start_engines(configs: Sequence[SimConfig], wait_ready: bool = True) -> SimCluster:
    """Start engines in the running loop; call `await cluster.stop()` when done."""
    cluster = SimCluster(configs, wait_ready)
    await cluster.start()
    if wait_ready:
        try:
            await cluster.wait_ready()
        except BaseException:
            await cluster.stop()
            raise
    return cluster


class BackgroundSimCluster:
    """A SimCluster on its own event loop in a daemon thread: `with BackgroundSimCluster(configs) as c:`."""

    def __init__(self, configs: Sequence[SimConfig], wait_ready: bool = True, timeout: float = 60.0) -> None:
        self._cluster = SimCluster(configs, wait_ready)
        self._wait_ready = wait_ready
        self._timeout = timeout
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gllm-sim", daemon=True)
        self.engines: list[EngineHandle] = []

    @property
    def urls(self) -> list[str]:
        """Base URLs of the engines."""
        return [engine.url for engine in self.engines]

    def start(self) -> list[EngineHandle]:
        """Start the thread and the engines; wait until loaded unless wait_ready is false."""
        self._thread.start()
        try:
            self.engines = self.run(self._cluster.start())
            if self._wait_ready:
                self.run(self._cluster.wait_ready())
        except BaseException:
            self.stop()
            raise
        return self.engines

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the cluster's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(self._timeout if timeout is None else timeout)

    def call(self, index: int, action: Callable[[EngineServer], Awaitable[T]]) -> T:
        """Run `action(server)` for engine `index` on the cluster's loop (e.g. lambda s: s.engine.sleep())."""
        server = self._cluster.servers[index]

        async def invoke() -> T:
            return await action(server)

        return self.run(invoke())

    def stop(self) -> None:
        """Stop the engines, the loop and the thread; safe to call twice."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            try:
                self.run(self._shutdown())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(self._timeout)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        await self._cluster.stop()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()

    def __enter__(self) -> BackgroundSimCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
