"""A running sim cluster: workers register and load the model, requests flow, dead children come back."""

from __future__ import annotations

import signal

import httpx
import pytest

from gllm.testing.cluster import DEMO_MODEL as MODEL
from gllm.testing.cluster import ClusterProcess, alive, cmdline
from gllm.testing.net import wait_until


def chat(cluster: ClusterProcess) -> httpx.Response:
    """One small chat completion through the balancer."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4}
    return httpx.post(f"{cluster.url}/v1/chat/completions", json=body, timeout=30.0)


@pytest.mark.integration
@pytest.mark.slow
class TestServing:
    """Workers started by the cluster register themselves and load the model named by the balancer."""

    def test_every_worker_is_ready_with_the_model(self, served_cluster: ClusterProcess) -> None:
        """GET /workers lists both workers, on the planned ports, ready with the model."""
        served_cluster.wait_ready(2, MODEL)
        addresses = sorted(w["address"] for w in served_cluster.workers())
        expected = sorted(f"http://127.0.0.1:{served_cluster.worker_port(i)}" for i in range(2))
        assert addresses == expected

    def test_engines_run_on_their_planned_ports(self, served_cluster: ClusterProcess) -> None:
        """Each worker's engine listens on the worker port + 10, with the worker's GPU label."""
        served_cluster.wait_ready(2, MODEL)
        for index in range(2):
            engine_port = str(served_cluster.worker_port(index) + 10)
            assert served_cluster.find("sim-engine", "--port", engine_port), served_cluster.output()
            worker = served_cluster.worker_process(index)
            assert cmdline(worker)[cmdline(worker).index("--gpus") + 1] == str(index)

    def test_chat_completion_through_the_balancer(self, served_cluster: ClusterProcess) -> None:
        """A chat completion sent to the balancer is answered by a worker's engine."""
        served_cluster.wait_ready(2, MODEL)
        response = chat(served_cluster)
        assert response.status_code == 200, response.text
        assert response.json()["model"] == MODEL
        assert response.json()["choices"][0]["message"]["content"]

    def test_banner_says_where_to_send_requests(self, served_cluster: ClusterProcess) -> None:
        """The start-up message gives the OpenAI base_url and a curl line, then reports readiness."""
        served_cluster.wait_output("cluster ready: all 2 workers serve demo-model")
        output = served_cluster.output()
        assert f'base_url="{served_cluster.url}/v1"' in output
        assert f"curl {served_cluster.url}/v1/chat/completions" in output


@pytest.mark.integration
@pytest.mark.slow
class TestSupervision:
    """A child that dies is reported and restarted; the cluster heals without anyone acting."""

    def test_killed_worker_is_reported_and_restarted(self, served_cluster: ClusterProcess) -> None:
        """SIGKILL a worker: its engine goes too, the exit is reported, and a new worker serves again."""
        served_cluster.wait_ready(2, MODEL)
        worker = served_cluster.worker_process(0)
        engines = [p for p in worker.children(recursive=True) if "sim-engine" in cmdline(p)]
        assert engines, "worker 0 runs no engine"
        worker.send_signal(signal.SIGKILL)
        served_cluster.wait_output(f"worker 0 (pid {worker.pid}) was killed by SIGKILL")
        served_cluster.wait_output("worker 0 restarted")
        # The orphaned engine receives its parent-death signal and exits.
        wait_until(lambda: not any(alive(e) for e in engines), timeout=30, what="old engine gone")
        wait_until(
            lambda: served_cluster.worker_process(0).pid != worker.pid, timeout=30, what="new worker process"
        )
        served_cluster.wait_ready(2, MODEL)
        assert chat(served_cluster).status_code == 200

    def test_killed_balancer_is_restarted_and_knows_its_workers(self, served_cluster: ClusterProcess) -> None:
        """SIGKILL the balancer: the restarted one lists every worker ready at once and serves requests."""
        served_cluster.wait_ready(2, MODEL)
        (balancer,) = served_cluster.find("start-balancer")
        balancer.send_signal(signal.SIGKILL)
        served_cluster.wait_output(f"balancer (pid {balancer.pid}) was killed by SIGKILL")
        served_cluster.wait_ready(2, MODEL)
        (new_balancer,) = served_cluster.find("start-balancer")
        assert new_balancer.pid != balancer.pid
        assert "--existing-workers" in cmdline(new_balancer)
        assert chat(served_cluster).status_code == 200
