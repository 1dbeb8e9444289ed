"""Run a worker: bind its port, start its duties, serve until asked to stop, then stop the engine first."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from gllm.worker.app import create_app
from gllm.worker.config import WorkerConfig
from gllm.worker.context import CONTEXT, WorkerContext

logger = logging.getLogger("gllm.worker")


@dataclass
class RunningWorker:
    """A worker serving on a bound port."""

    runner: web.AppRunner
    port: int

    @property
    def context(self) -> WorkerContext:
        """The app's context (supervisor, registrar, ...)."""
        return self.runner.app[CONTEXT]

    @property
    def url(self) -> str:
        """Loopback URL of the worker."""
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        """Stop serving; the app's cleanup stops the engine tree and the HTTP client."""
        await self.runner.cleanup()


async def start_worker(config: WorkerConfig) -> RunningWorker:
    """Bind and start serving; the initial model load and registration begin only once the port is bound."""
    # handler_cancellation: a client that hangs up cancels its handler, which closes the engine request.
    runner = web.AppRunner(create_app(config), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = _bound_port(runner) or config.port
        worker = RunningWorker(runner, port)
        await worker.context.begin(port)
    except BaseException:
        await runner.cleanup()
        raise
    return worker


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


async def serve(config: WorkerConfig) -> int:
    """Serve until SIGINT or SIGTERM; stop the engine tree before returning 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        worker = await start_worker(config)
    except OSError as exc:
        logger.error("cannot serve on %s:%d: %s", config.host, config.port, exc)
        return 1
    logger.info(
        "worker on %s:%d, engine %s on port %d",
        config.host,
        worker.port,
        config.engine,
        config.resolved_engine_port,
    )
    try:
        await stop.wait()
        logger.info("stopping: engine first")
    finally:
        await worker.close()
    return 0
