"""Health ejection in a running balancer: loading workers, recovery, and what clients see meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorkerFarm, WorkerBehaviour
from gllm.testing.net import wait_until

MakeBalancer = Callable[..., BalancerThread]


def row(http: httpx.Client, address: str) -> dict[str, Any]:
    """One worker of GET /workers."""
    found: dict[str, Any] = {w["address"]: w for w in http.get("/workers").json()}[address]
    return found


@pytest.mark.integration
class TestHealthEjection:
    """Failed probes eject, passed probes readmit; a worker still loading is not an outlier."""

    def test_dead_worker_is_ejected_and_comes_back(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """Failing /health ejects after the threshold; passing again readmits, and requests reach it again."""
        balancer = make_balancer(health_interval=0.1, unhealthy_threshold=2, healthy_threshold=2)
        worker = farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            assert http.post("/add_worker", json={"address": worker.url}).status_code == 200
            worker.behaviour.health_status = 500
            wait_until(lambda: row(http, worker.url)["ejected"], timeout=15, what="ejected")
            assert http.post("/v1/completions", json={}).status_code == 502
            worker.behaviour.health_status = 200
            wait_until(lambda: not row(http, worker.url)["ejected"], timeout=15, what="readmitted")
            assert http.post("/v1/completions", json={}).status_code == 200
            assert row(http, worker.url)["ejections"] == 1

    def test_loading_worker_is_served_as_soon_as_it_is_ready(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """A worker whose /health fails only while its engine loads takes requests once it reports ready.

        Its failed probes during the load are not an outage: counting them ejects every new worker, and then
        requests right after "ready" get 502 until `healthy_threshold` more probes pass (10 s with defaults).
        """
        balancer = make_balancer(health_interval=0.1, unhealthy_threshold=2, healthy_threshold=50)
        worker = farm.add(WorkerBehaviour(state="loading", health_status=503, model="m"))
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            assert http.post("/add_worker", json={"address": worker.url}).status_code == 200
            wait_until(
                lambda: row(http, worker.url)["health_failures"] >= 3, timeout=15, what="failed probes"
            )
            assert http.post("/v1/completions", json={"model": "m"}).status_code == 503  # model_loading
            worker.behaviour.state, worker.behaviour.health_status = "ready", 200
            wait_until(lambda: row(http, worker.url)["state"] == "ready", timeout=15, what="reported ready")
            wait_until(lambda: row(http, worker.url)["healthy"], timeout=15, what="a passed probe")
            response = http.post("/v1/completions", json={"model": "m"})
            assert response.status_code == 200, response.text
            assert row(http, worker.url)["ejections"] == 0
