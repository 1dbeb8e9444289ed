"""A real balancer in front of real simulated engines, with a chosen policy, its options and engine metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.policies import uses_engine_metrics
from gllm.sim import BackgroundSimCluster
from gllm.testing.balancer import BalancerThread
from gllm.testing.net import wait_until
from gllm.testing.sim import fast_config


@dataclass
class Routed:
    """A started balancer, its engines, an HTTP client to it, and (when scraped) the engine figures."""

    balancer: BalancerThread
    engines: BackgroundSimCluster
    http: httpx.Client
    loads: EngineLoadTable | None = None

    def chat(
        self, content: str, max_tokens: int = 4, headers: dict[str, str] | None = None, **body: Any
    ) -> dict[str, Any]:
        """One chat completion through the balancer (must succeed)."""
        payload = {
            "model": "sim-model",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
        }
        resp = self.http.post("/v1/chat/completions", json={**payload, **body}, headers=headers or {})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def served(self) -> dict[str, int]:
        """Requests each engine got through the balancer, by engine URL."""
        return {w["address"]: w["requests_total"] for w in self.http.get("/workers").json()}


@pytest.fixture
def routed() -> Iterator[Callable[..., Routed]]:
    """Factory: `routed(policy, engines=N, options={...}, metrics=False, **sim overrides)`; all stopped after."""
    stack: list[Callable[[], None]] = []

    def make(
        policy: str,
        engines: int = 4,
        options: dict[str, str] | None = None,
        metrics: bool = False,
        **sim: Any,
    ) -> Routed:
        cluster = BackgroundSimCluster([fast_config(**sim) for _ in range(engines)])
        cluster.start()
        stack.append(cluster.stop)
        policy_options = tuple(f"{key}={value}" for key, value in (options or {}).items())
        if not metrics and uses_engine_metrics(policy):
            policy_options += ("load_scoring=in_flight",)
        balancer = BalancerThread(
            policy=policy, policy_options=policy_options, engine_metrics_interval=0.1
        ).start()
        stack.append(balancer.stop)
        assert balancer.app is not None
        loads = balancer.app.engine_loads if metrics else None
        http = httpx.Client(base_url=balancer.url, timeout=30.0)
        stack.append(http.close)
        for url in cluster.urls:
            assert http.post("/add_worker", json={"address": url}).status_code == 200
        wait_until(
            lambda: all(w["model"] == "sim-model" for w in http.get("/workers").json()),
            timeout=30,
            what="the balancer to learn every engine's model",
        )
        return Routed(balancer, cluster, http, loads)

    try:
        yield make
    finally:
        for stop in reversed(stack):
            stop()
