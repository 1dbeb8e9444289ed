"""Fixtures for worker integration tests: an event loop thread hosting real workers and a fake balancer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web

from gllm.testing import free_port
from gllm.worker.config import WorkerConfig
from gllm.worker.server import RunningWorker, start_worker
from gllm.worker.supervisor import SupervisorConfig

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a background thread, so that synchronous tests can host async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@dataclass
class FakeBalancer:
    """Records POST /add_worker calls and answers with `model`; can fail the first `fail_first` calls."""

    port: int
    model: str = ""
    fail_first: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def add_worker(self, request: web.Request) -> web.Response:
        """Record the call; 500 for the first `fail_first` calls, then 200 with the model as text."""
        self.calls.append(
            {"body": await request.json(), "authorization": request.headers.get("Authorization")}
        )
        if len(self.calls) <= self.fail_first:
            return web.Response(status=500, text="not yet")
        return web.Response(text=self.model)

    async def start(self) -> None:
        """Serve on 127.0.0.1:port."""
        app = web.Application()
        app.router.add_post("/add_worker", self.add_worker)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """A background event loop, closed after the test."""
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture(scope="module")
def module_loop_thread() -> Iterator[LoopThread]:
    """A background event loop shared by one test module (for servers that tests only read from)."""
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


WorkerFactory = Callable[..., RunningWorker]


@contextmanager
def worker_factory(loop_thread: LoopThread) -> Iterator[WorkerFactory]:
    """Start real workers on 127.0.0.1 (sim engine by default); every one is closed at the end."""
    started: list[RunningWorker] = []

    def make(**overrides: Any) -> RunningWorker:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "engine": "sim",
            "engine_port": free_port(),
            "supervisor": SupervisorConfig(poll_interval=0.05, stop_grace=5.0, load_timeout=60.0),
            **overrides,
        }
        worker = loop_thread.run(start_worker(WorkerConfig(**settings)))
        started.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in started:
            loop_thread.run(worker.close())


@pytest.fixture
def make_worker(loop_thread: LoopThread) -> Iterator[WorkerFactory]:
    """Workers closed after the test."""
    with worker_factory(loop_thread) as make:
        yield make


@pytest.fixture(scope="module")
def make_module_worker(module_loop_thread: LoopThread) -> Iterator[WorkerFactory]:
    """Workers shared by a test module, closed after its last test."""
    with worker_factory(module_loop_thread) as make:
        yield make


@pytest.fixture
def make_balancer(loop_thread: LoopThread) -> Iterator[Callable[..., FakeBalancer]]:
    """Fake balancers (not started until `start()` runs on the loop); all stopped after the test."""
    made: list[FakeBalancer] = []

    def make(**kwargs: Any) -> FakeBalancer:
        balancer = FakeBalancer(port=kwargs.pop("port", None) or free_port(), **kwargs)
        made.append(balancer)
        return balancer

    try:
        yield make
    finally:
        for balancer in made:
            loop_thread.run(balancer.stop())
