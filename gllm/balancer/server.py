"""Run a balancer: bind, start, serve until told to stop, shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gllm.balancer.app import BalancerApp, create_app
from gllm.balancer.config import BalancerConfig
from gllm.http.server import HttpServer, ServerLimits

log = logging.getLogger("gllm.balancer")


async def serve(
    config: BalancerConfig,
    stop: asyncio.Event,
    on_ready: Callable[[BalancerApp, int], None] | None = None,
) -> None:
    """Serve `config` until `stop` is set; `on_ready` gets the app and the bound port."""
    app = create_app(config)
    server = HttpServer(app.handle, ServerLimits(max_body_bytes=config.max_body_bytes))
    port = await server.start(config.host, config.port)
    try:
        await app.startup()
        if config.control_open_to_network:
            log.warning(
                "control routes (add_worker, load_model, release_gpus, ...) are open to the network on %s; "
                "set --admin-key or GLLM_ADMIN_KEY to require a key",
                config.host,
            )
        log.info("balancer listening on http://%s:%d (policy %s)", config.host, port, config.policy)
        if on_ready is not None:
            on_ready(app, port)
        await stop.wait()
        server.stop_listening()  # no new connections; open ones get 503 for new requests while draining
        await app.drain(config.drain_timeout)
    finally:
        server.stop_listening()
        await server.close()
        await app.shutdown()
