"""GET /metrics, /stats and /dashboard on a real balancer with fake workers, after real traffic."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm
from gllm.testing.observe import Observed, parse_samples, sample, scrape

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
AddWorkers = Callable[..., list[FakeWorker]]


@contextmanager
def held_requests(
    balancer: BalancerThread, farm: FakeWorkerFarm, workers: list[FakeWorker], count: int
) -> Iterator[None]:
    """`count` chat requests held open on `workers` until the block ends (then released and awaited)."""
    for worker in workers:
        worker.behaviour.hold = True
    threads = [
        threading.Thread(target=lambda: httpx.post(balancer.url + "/chat/completions", json=CHAT, timeout=60))
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: sum(w.held for w in workers) == count, timeout=30, what=f"{count} requests held")
        yield
    finally:
        for worker in workers:
            farm.release(worker)
        for thread in threads:
            thread.join(timeout=60)


def wait_ready(client: httpx.Client, count: int) -> None:
    """Until the balancer has seen `count` workers ready."""
    wait_until(
        lambda: sum(w["state"] == "ready" for w in client.get("/workers").json()) == count,
        timeout=30,
        what=f"{count} workers ready",
    )


@pytest.mark.integration
class TestMetricsRoute:
    """GET /metrics: valid Prometheus text with the cluster's gauges and the traffic's counters."""

    def test_scrapes_cleanly(
        self, observed: Observed, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """Both /metrics and /v1/metrics parse, with Prometheus' content type and per-worker states."""
        workers = add_workers(2, model="m")
        wait_ready(client, 2)
        for path in ("/metrics", "/v1/metrics"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            samples = parse_samples(response.text)
            for worker in workers:
                assert sample(samples, "gllm_worker_state", worker=worker.url, state="ready") == 1
                assert sample(samples, "gllm_worker_in_flight", worker=worker.url) == 0
            assert sample(samples, "gllm_workers", model="m", state="ready") == 2

    @pytest.mark.skipif(
        shutil.which("promtool") is None, reason="promtool (Prometheus' checker) is not on PATH"
    )
    def test_promtool(
        self, observed: Observed, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """`promtool check metrics` finds nothing to complain about, lint included, after some traffic."""
        add_workers(2, model="m")
        wait_ready(client, 2)
        for stream in (False, True):
            assert client.post("/chat/completions", json={**CHAT, "stream": stream}).status_code == 200
        page = client.get("/metrics").text
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=page,
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_in_flight_gauge(
        self,
        observed: Observed,
        balancer: BalancerThread,
        client: httpx.Client,
        farm: FakeWorkerFarm,
        add_workers: AddWorkers,
    ) -> None:
        """Held requests show as in-flight on their worker, the same as /workers says, and go back to 0."""
        (worker,) = add_workers(1, model="m")
        wait_ready(client, 1)
        with held_requests(balancer, farm, [worker], 3):
            samples = scrape(balancer.url + "/metrics")
            assert sample(samples, "gllm_worker_in_flight", worker=worker.url) == 3
            assert client.get("/workers").json()[0]["in_flight"] == 3
        wait_until(
            lambda: (
                sample(scrape(balancer.url + "/metrics"), "gllm_worker_in_flight", worker=worker.url) == 0
            ),
            timeout=30,
            what="in-flight back to 0",
        )

    def test_counts_after_traffic(
        self, wired: Observed, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """Plain and streamed requests, and a 404, are counted by route, status class and worker."""
        workers = add_workers(2, model="m", stream_chunks=3)
        wait_ready(client, 2)
        for _ in range(20):
            assert client.post("/chat/completions", json=CHAT).status_code == 200
        for _ in range(10):
            with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
                assert response.status_code == 200
                response.read()
        assert client.post("/completions", json={"model": "nope", "prompt": "x"}).status_code == 404
        samples = scrape(balancer.url + "/metrics")
        chat = {"route": "/chat/completions"}
        assert sample(samples, "gllm_requests_total", status_class="2xx", **chat) == 30
        assert sample(samples, "gllm_requests_total", route="/completions", status_class="4xx") == 1
        assert sample(samples, "gllm_request_duration_seconds_count", **chat) == 30
        assert sample(samples, "gllm_request_ttfb_seconds_count", **chat) == 30
        assert sample(samples, "gllm_stream_chunks_total", **chat) >= 10
        per_worker = [
            sample(samples, "gllm_worker_requests_total", worker=w.url, status_class="2xx") for w in workers
        ]
        assert sum(per_worker) == 30
        assert sum(len(w.completions()) for w in workers) == 30

    def test_operations_counted(
        self, wired: Observed, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """load_model and release_gpus count with their outcome."""
        add_workers(1, model="m")
        assert client.post("/load_model", json={"model_path": "m2"}).status_code == 200
        assert client.post("/release_gpus").status_code == 200
        samples = scrape(balancer.url + "/metrics")
        assert sample(samples, "gllm_operations_total", operation="load_model", outcome="ok") == 1
        assert sample(samples, "gllm_operations_total", operation="release_gpus", outcome="ok") == 1


@pytest.mark.integration
class TestStatsRoute:
    """GET /stats: the JSON the dashboard and `gllm status` read."""

    def test_matches_workers(
        self,
        observed: Observed,
        balancer: BalancerThread,
        client: httpx.Client,
        farm: FakeWorkerFarm,
        add_workers: AddWorkers,
    ) -> None:
        """Workers' state, model and in-flight in /stats are those of /workers."""
        workers = add_workers(2, model="m")
        wait_ready(client, 2)
        with held_requests(balancer, farm, workers, 3):
            stats = client.get("/v1/stats").json()
            listed = {w["address"]: w for w in client.get("/workers").json()}
        assert stats["cluster"]["workers"] == 2
        assert stats["cluster"]["ready"] == 2
        assert stats["cluster"]["in_flight"] == 3
        for row in stats["workers"]:
            assert row["in_flight"] == listed[row["address"]]["in_flight"]
            assert row["state"] == listed[row["address"]]["state"] == "ready"
            assert row["model"] == "m"

    def test_traffic(
        self, wired: Observed, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """After traffic: last-minute totals, per-worker figures and the chart series add up."""
        workers = add_workers(2, model="m")
        wait_ready(client, 2)
        for _ in range(24):
            assert client.post("/chat/completions", json=CHAT).status_code == 200
        stats = client.get("/stats?window=30&step=1").json()
        assert stats["totals"]["requests"] == 24
        assert stats["totals"]["latency_p50_ms"] is not None
        assert sum(row["requests"] for row in stats["workers"]) == 24
        assert {row["address"] for row in stats["workers"]} == {w.url for w in workers}

        def charted() -> float:
            series = client.get("/stats?window=30&step=1").json()["series"]
            return float(sum(series["requests_per_s"]))

        wait_until(lambda: charted() == 24, timeout=10, what="the series to include every request")

    def test_bad_parameters(self, observed: Observed, client: httpx.Client) -> None:
        """A window or step that is not a number is a 400 with an OpenAI-style error."""
        response = client.get("/stats?step=soon")
        assert response.status_code == 400
        assert "'step' must be a whole number" in response.json()["error"]["message"]


@pytest.mark.integration
class TestDashboardRoute:
    """GET /dashboard: one self-contained page."""

    @pytest.mark.parametrize("path", ["/dashboard", "/v1/dashboard", "/dashboard/"])
    def test_page(self, observed: Observed, client: httpx.Client, path: str) -> None:
        """HTML with its scripts inline and a Content-Security-Policy."""
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'sha256-" in response.headers["content-security-policy"]
        assert "<canvas" in response.text
