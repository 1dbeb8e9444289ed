"""The worker agent's /metrics (its own, then its engine's) and /engine/metrics, with a simulated engine."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.observe import SimWorkers, parse_samples, sample
from gllm.worker.server import RunningWorker


@pytest.fixture(scope="module")
def sim_worker() -> Iterator[RunningWorker]:
    """One worker whose sim engine serves `sim-model`."""
    with SimWorkers(1) as sims:
        worker = sims.workers[0]
        assert httpx.post(worker.url + "/load_model", json={"model_path": "sim-model"}, timeout=10).is_success
        wait_until(
            lambda: httpx.get(worker.url + "/status", timeout=10).json()["state"] == "ready",
            timeout=60,
            what="engine ready",
        )
        yield worker


@pytest.mark.integration
class TestWorkerMetrics:
    """What a Prometheus scraping a worker gets."""

    def test_own_and_engine_metrics(self, sim_worker: RunningWorker) -> None:
        """/metrics parses as one page: the worker's state, load count and time, then the engine's vllm: metrics."""
        for path in ("/metrics", "/v1/metrics"):
            response = httpx.get(sim_worker.url + path, timeout=10)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            samples = parse_samples(response.text)
            assert sample(samples, "gllm_worker_engine_state", state="ready") == 1
            assert sample(samples, "gllm_worker_engine_up") == 1
            assert sample(samples, "gllm_worker_engine_loads_total") == 1
            assert sample(samples, "gllm_worker_engine_ready_total") == 1
            assert sample(samples, "gllm_worker_model_info", model="sim-model") == 1
            assert sample(samples, "gllm_worker_engine_load_duration_seconds") > 0
            assert any(name.startswith("vllm:num_requests_running") for name, _ in samples)

    def test_engine_pass_through(self, sim_worker: RunningWorker) -> None:
        """/engine/metrics is the engine's page as it is, without the worker's own metrics."""
        for path in ("/engine/metrics", "/v1/engine/metrics"):
            response = httpx.get(sim_worker.url + path, timeout=10)
            assert response.status_code == 200
            assert "vllm:num_requests_running" in response.text
            assert "gllm_worker_" not in response.text


@pytest.mark.integration
class TestWithoutEngine:
    """A worker with no engine still exposes its own metrics."""

    def test_idle_worker(self) -> None:
        """Idle: /metrics has the worker's state only; /engine/metrics is 503 with the reason."""
        with SimWorkers(1) as sims:
            url = sims.urls[0]
            samples = parse_samples(httpx.get(url + "/metrics", timeout=10).text)
            assert sample(samples, "gllm_worker_engine_state", state="idle") == 1
            assert sample(samples, "gllm_worker_engine_up") == 0
            assert not any(name.startswith("vllm:") for name, _ in samples)
            response = httpx.get(url + "/engine/metrics", timeout=10)
            assert response.status_code == 503
            assert response.text == "No model loaded"
