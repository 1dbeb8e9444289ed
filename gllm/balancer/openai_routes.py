"""The OpenAI routes: completions relayed to a worker chosen by the policy, and the model list."""

from __future__ import annotations

import time

from gllm.balancer.cluster import Cluster
from gllm.balancer.dispatch import Dispatcher
from gllm.balancer.responses import read_json_object, send_json
from gllm.balancer.router import Router
from gllm.http.server import HttpRequest, ResponseWriter


class OpenAIRoutes:
    """`/chat/completions`, `/completions` and `/models`."""

    def __init__(self, cluster: Cluster, dispatcher: Dispatcher) -> None:
        self._cluster = cluster
        self._dispatcher = dispatcher

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
        if payload is not None:
            await self._dispatcher.dispatch(request, writer, path, payload)

    async def models(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """The cluster's model(s) as an OpenAI model list."""
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "gllm", "root": name}
            for name in self._cluster.model_names()
        ]
        send_json(writer, 200, {"object": "list", "data": data})
