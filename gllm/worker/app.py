"""The worker's web application: create_app builds it; the lifespan owns the HTTP client and the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gllm.worker import routes
from gllm.worker.config import WorkerConfig
from gllm.worker.context import CONTEXT, WorkerContext
from gllm.worker.metrics import METRICS, WorkerMetrics
from gllm.worker.supervisor import EngineSupervisor

MAX_BODY_BYTES = 64 * 1024 * 1024  # long prompts are fine; the balancer caps bodies at 32 MiB by default


def create_app(config: WorkerConfig) -> web.Application:
    """A worker app; its engine and registration start with `app[CONTEXT].begin(port)` after binding."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            auto_decompress=False,  # relayed bodies pass through byte for byte, encoding included
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout),
        )
        context = WorkerContext(
            config, session, EngineSupervisor(config.engine_spec(), session, config.supervisor)
        )
        app[CONTEXT] = context
        app[METRICS] = WorkerMetrics(context.supervisor)
        watcher = asyncio.create_task(app[METRICS].run())
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await context.close()

    app.cleanup_ctx.append(lifespan)
    routes.add_routes(app)
    return app
