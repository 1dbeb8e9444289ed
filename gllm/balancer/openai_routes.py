"""The OpenAI routes: completions relayed to a worker chosen by the policy, and the model list."""

from __future__ import annotations

import logging
import time

from gllm.balancer.cluster import Cluster, Unavailable
from gllm.balancer.policies import RoutingContext
from gllm.balancer.proxy import Proxy
from gllm.balancer.registry import Worker
from gllm.balancer.responses import read_json_object, send_error, send_json
from gllm.balancer.router import Router
from gllm.http.client import ConnectError, UpstreamClosed, UpstreamTimeout
from gllm.http.server import HttpRequest, ResponseWriter

log = logging.getLogger("gllm.balancer")


class OpenAIRoutes:
    """`/chat/completions`, `/completions` and `/models`."""

    def __init__(self, cluster: Cluster, proxy: Proxy) -> None:
        self._cluster = cluster
        self._proxy = proxy

    def register(self, router: Router) -> None:
        """Add these routes to the router."""
        router.add("POST", "/chat/completions", self.chat_completions)
        router.add("POST", "/completions", self.completions)
        router.add("GET", "/models", self.models)

    async def chat_completions(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Relay a chat completion."""
        await self._relay(request, writer, "/chat/completions")

    async def completions(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Relay a text completion."""
        await self._relay(request, writer, "/completions")

    async def _relay(self, request: HttpRequest, writer: ResponseWriter, path: str) -> None:
        payload = read_json_object(request, writer)
        if payload is None:
            return
        model = payload.get("model")
        ctx = RoutingContext(model if isinstance(model, str) else None, payload, request.headers)
        tried: list[Worker] = []
        while True:
            candidates = self._cluster.candidates(ctx.model, tried)
            if isinstance(candidates, Unavailable):
                retry = ((b"retry-after", b"%d" % candidates.retry_after),) if candidates.retry_after else ()
                send_error(writer, candidates.status, candidates.message, candidates.code, retry)
                return
            worker = self._cluster.policy.choose(candidates, ctx)
            try:
                await self._proxy.forward(worker, request, writer, path)
                return
            except ConnectError as exc:
                worker.last_error = str(exc)
                tried.append(worker)
                log.warning("worker %s unreachable, trying another: %s", worker.address, exc)
            except UpstreamTimeout as exc:
                worker.last_error = str(exc)
                if not writer.started:
                    send_error(writer, 504, f"Worker {worker.address} timed out: {exc}", "worker_timeout")
                return
            except UpstreamClosed as exc:
                worker.last_error = str(exc)
                log.warning("worker %s failed during a request: %s", worker.address, exc)
                if not writer.started:
                    send_error(writer, 502, f"Worker {worker.address} failed: {exc}", "worker_failed")
                return

    async def models(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """The cluster's model(s) as an OpenAI model list."""
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "gllm", "root": name}
            for name in self._cluster.model_names()
        ]
        send_json(writer, 200, {"object": "list", "data": data})
