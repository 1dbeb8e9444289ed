"""A real balancer in front of real simulated engines, with a chosen policy, its options and engine metrics.

Until the balancer's config carries policy options and starts the engine-metrics scraper itself, `routed` builds
the policy with `make_policy(..., options, loads=table)` and runs an EngineMetricsScraper on the balancer's own
loop (through its pooled client): the same objects the app will build, installed after start.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.engine_metrics import EngineMetricsScraper
from gllm.balancer.policies import make_policy
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
        balancer = BalancerThread(policy=policy).start()
        stack.append(balancer.stop)
        loads = EngineLoadTable(max_age=5.0) if metrics else None
        if options or metrics:
            scraping = _install(balancer, policy, options or {}, loads)
            if scraping is not None:
                stack.append(lambda: balancer.run(_cancel(scraping)))
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


def _install(
    balancer: BalancerThread, policy: str, options: dict[str, str], loads: EngineLoadTable | None
) -> asyncio.Task[None] | None:
    """Replace the balancer's policy with one built with options and engine figures; start the scraper."""
    app = balancer.app
    assert app is not None
    config = balancer.config

    async def install() -> asyncio.Task[None] | None:
        app.cluster.policy = make_policy(
            policy, config.check_size, random.Random(config.seed), options, loads
        )
        if loads is None:
            return None
        scraper = EngineMetricsScraper(app.pool, app.cluster.registry.all, loads, interval=0.1, timeout=2.0)
        return asyncio.get_running_loop().create_task(scraper.run())

    task: asyncio.Task[None] | None = balancer.run(install())
    return task


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
