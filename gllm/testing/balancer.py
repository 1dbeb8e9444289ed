"""A real balancer on 127.0.0.1 in a background thread, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from types import TracebackType
from typing import Any

from gllm.balancer.app import BalancerApp
from gllm.balancer.config import BalancerConfig
from gllm.balancer.server import serve
from gllm.testing.loop_thread import LoopThread


class BalancerThread:
    """Starts `serve()` on a free port (bound as port 0) and stops it on `stop()` or leaving a `with` block."""

    def __init__(self, config: BalancerConfig | None = None, **overrides: Any) -> None:
        base = config or BalancerConfig(host="127.0.0.1", port=0, seed=1234)
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self._loop_thread: LoopThread | None = None
        self._stop: asyncio.Event | None = None
        self._done: asyncio.Future[None] | None = None
        self.app: BalancerApp | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the running balancer."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> BalancerThread:
        """Start and wait until it listens."""
        self._loop_thread = LoopThread("gllm-test-balancer")
        self._loop_thread.run(self._start(), timeout)
        return self

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready: asyncio.Future[None] = loop.create_future()

        def on_ready(app: BalancerApp, port: int) -> None:
            self.app, self.port = app, port
            ready.set_result(None)

        task = loop.create_task(serve(self.config, self._stop, on_ready))
        self._done = task
        await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # startup failed: raise it here

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on the balancer's loop (to inspect its state safely)."""
        assert self._loop_thread is not None
        return self._loop_thread.run(coro, timeout)

    def stop(self) -> None:
        """Shut the balancer down and stop its thread."""
        if self._loop_thread is None:
            return
        loop_thread, self._loop_thread = self._loop_thread, None
        if self._stop is not None and self._done is not None:
            stop, done = self._stop, self._done

            async def shutdown() -> None:
                stop.set()
                await asyncio.wait_for(asyncio.shield(done), 30)

            loop_thread.run(shutdown(), 40)
        loop_thread.close()

    def __enter__(self) -> BalancerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
