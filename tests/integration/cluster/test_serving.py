"""A running sim cluster: workers register and load the model, requests flow, dead children come back."""

from __future__ import annotations

import signal

import httpx
import psutil
import pytest

from gllm.testing.cluster import DEMO_MODEL as MODEL
from gllm.testing.cluster import ClusterProcess, alive, cmdline
from gllm.testing.net import wait_until


def chat(cluster: ClusterProcess) -> httpx.Response:
    """One small chat completion through the balancer."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4}
    return httpx.post(f"{cluster.url}/v1/chat/completions", json=body, timeout=30.0)


def restarted(cluster: ClusterProcess, balancer: psutil.Process) -> psutil.Process:
    """The balancer process that replaced `balancer`."""
    found: list[psutil.Process] = []

    def replaced() -> bool:
        found[:] = [p for p in cluster.find("start-balancer") if p.pid != balancer.pid]
        return len(found) == 1

    wait_until(replaced, timeout=30, what="a new balancer process")
    return found[0]


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

    def test_model_came_from_the_registration_reply(self, served_cluster: ClusterProcess) -> None:
        """Workers start without --model: the balancer's add_worker reply named the model they loaded."""
        served_cluster.wait_ready(2, MODEL)
        for index in range(2):
            assert "--model" not in cmdline(served_cluster.worker_process(index))
            served_cluster.wait_output(f"[worker {index}]")
        output = served_cluster.output()
        assert output.count(f"(cluster model: {MODEL})") >= 2

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

    def test_killed_engine_is_reported_and_reloads_on_request(self, served_cluster: ClusterProcess) -> None:
        """SIGKILL a worker's engine: the cluster reports the failed worker; a load_model brings it back."""
        served_cluster.wait_ready(2, MODEL)
        worker = served_cluster.worker_process(1)
        (engine,) = [p for p in worker.children(recursive=True) if "sim-engine" in cmdline(p)]
        engine.send_signal(signal.SIGKILL)
        served_cluster.wait_output(f"worker 1 (http://127.0.0.1:{served_cluster.worker_port(1)}) failed: ")
        response = httpx.post(f"{served_cluster.url}/load_model", json={"model_path": MODEL}, timeout=30)
        assert response.status_code == 200, response.text
        served_cluster.wait_ready(2, MODEL)
        assert served_cluster.worker_process(1).pid == worker.pid  # the worker itself lived on

    def test_restarted_balancer_keeps_a_swapped_model(self, served_cluster: ClusterProcess) -> None:
        """After a POST /load_model swap, a restarted balancer is told the new model, not --load-model."""
        served_cluster.wait_ready(2, MODEL)
        try:
            response = httpx.post(
                f"{served_cluster.url}/load_model", json={"model_path": "other"}, timeout=30
            )
            assert response.status_code == 200, response.text
            served_cluster.wait_ready(2, "other")
            served_cluster.wait_output("workers ready: 2/2 with other")
            (balancer,) = served_cluster.find("start-balancer")
            balancer.send_signal(signal.SIGKILL)
            new_balancer = restarted(served_cluster, balancer)
            assert cmdline(new_balancer)[cmdline(new_balancer).index("--load-model") + 1] == "other"
            served_cluster.wait_ready(2, "other")
        finally:
            httpx.post(f"{served_cluster.url}/load_model", json={"model_path": MODEL}, timeout=30)
        served_cluster.wait_ready(2, MODEL)

    def test_killed_balancer_is_restarted_and_knows_its_workers(self, served_cluster: ClusterProcess) -> None:
        """SIGKILL the balancer: the restarted one lists every worker ready at once and serves requests."""
        served_cluster.wait_ready(2, MODEL)
        (balancer,) = served_cluster.find("start-balancer")
        balancer.send_signal(signal.SIGKILL)
        served_cluster.wait_output(f"balancer (pid {balancer.pid}) was killed by SIGKILL")
        new_balancer = restarted(served_cluster, balancer)
        served_cluster.wait_ready(2, MODEL)
        assert "--existing-workers" in cmdline(new_balancer)
        assert chat(served_cluster).status_code == 200
