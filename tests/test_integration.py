"""Multi-worker scenarios end to end: a whole cluster's life, workers failing under load, the real command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

import gllm
from gllm.testing import free_port, wait_for_http, wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.checks import by_address
from gllm.testing.fake_worker import FakeWorkerFarm, WorkerBehaviour


def chat(client: httpx.Client, stream: bool) -> tuple[int, str]:
    """One chat completion; return the status and the name of the worker that answered."""
    payload = {"model": "org/m-7b", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        body = response.read().decode()
    if not stream:
        return response.status_code, json.loads(body)["worker"]
    events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return response.status_code, json.loads(events[0])["worker"]


@pytest.mark.integration
class TestClusterLifecycle:
    """Register, load, serve, remove and release, as an operator would."""

    def test_full_lifecycle(self, client: httpx.Client, farm: FakeWorkerFarm) -> None:
        """Three workers from registration to release; a removed worker finishes its requests and gets no more."""
        workers = [farm.add(WorkerBehaviour(stream_chunks=3)) for _ in range(3)]
        for worker in workers:
            assert client.post("/add_worker", json={"address": worker.url}).text == ""
        assert client.post("/load_model", json={"model_path": "org/m-7b"}).text == "Model load requested"
        for worker in workers:
            assert [r.json() for r in worker.requests if r.path == "/load_model"] == [
                {"model_path": "org/m-7b"}
            ]
        assert client.get("/health").text == "All workers healthy"
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["org/m-7b"]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: chat(client, stream=i % 2 == 0), range(48)))
        assert {status for status, _ in results} == {200}
        assert {name for _, name in results} == {w.name for w in workers}

        leaving, staying = workers[0], workers[1:]
        for worker in workers:
            worker.behaviour.hold = True
        with ThreadPoolExecutor(6) as pool:
            try:
                held = [pool.submit(chat, client, i % 2 == 0) for i in range(6)]
                wait_until(lambda: sum(w.held for w in workers) == 6, what="six requests held")
                assert leaving.held == 2  # least busy spreads them exactly
                assert client.post("/remove_worker", json={"address": leaving.url}).status_code == 200
                assert leaving.url not in by_address(client)
                for worker in staying:
                    farm.release(worker)
                served_before = len(leaving.completions())
                for i in range(12):
                    assert chat(client, stream=i % 2 == 0)[1] != leaving.name
                assert len(leaving.completions()) == served_before
            finally:
                for worker in workers:
                    farm.release(worker)
            outcomes = [f.result() for f in held]
        assert [status for status, _ in outcomes] == [200] * 6
        assert sum(name == leaving.name for _, name in outcomes) == 2
        assert sum(w["in_flight"] for w in by_address(client).values()) == 0

        response = client.post("/release_gpus")
        assert (response.status_code, response.text) == (200, "Gpus released")
        for worker in staying:
            assert any(r.path == "/release_gpus" for r in worker.requests)
        assert not any(r.path == "/release_gpus" for r in leaving.requests)


@pytest.mark.integration
class TestWorkerFailure:
    """Workers that fail while traffic flows."""

    def test_worker_down_under_load(
        self, balancer: BalancerThread, client: httpx.Client, farm: FakeWorkerFarm
    ) -> None:
        """A worker taken down mid-traffic is skipped (its connections refused); clients see no error."""
        workers = [farm.add(WorkerBehaviour(completion_delay=0.005)) for _ in range(3)]
        for worker in workers:
            assert client.post("/add_worker", json={"address": worker.url}).status_code == 200
        victim = workers[0]
        total = 400
        done = 0
        halfway = threading.Event()

        async def one(http: aiohttp.ClientSession, i: int) -> int:
            nonlocal done
            async with http.post(balancer.url + "/completions", json={"i": i}) as response:
                await response.read()
            done += 1
            if done == total // 4:
                halfway.set()
            return response.status

        async def traffic() -> list[int]:
            connector = aiohttp.TCPConnector(limit=16)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            ) as http:
                return list(await asyncio.gather(*(one(http, i) for i in range(total))))

        with ThreadPoolExecutor(1) as pool:
            statuses = pool.submit(asyncio.run, traffic())
            assert halfway.wait(60)
            farm.stop(victim)
            served_by_victim = len(victim.completions())
            assert statuses.result() == [200] * total
        assert len(victim.completions()) == served_by_victim
        assert sum(len(w.completions()) for w in workers) == total
        view = by_address(client)
        assert view[victim.url]["last_error"]
        assert sum(w["in_flight"] for w in view.values()) == 0
        assert client.get("/health").text == "Worker unhealthy"

    def test_worker_failing_requests_is_not_retried(self, client: httpx.Client, farm: FakeWorkerFarm) -> None:
        """A worker that answers with an error is not a connection failure: its answer reaches the client."""
        bad = farm.add(WorkerBehaviour(completion_status=500))
        assert client.post("/add_worker", json={"address": bad.url}).status_code == 200
        assert client.post("/completions", json={}).status_code == 500
        assert len(bad.completions()) == 1


def gllm_command(*args: str) -> list[str]:
    """The `gllm` command line, run with this interpreter."""
    return [sys.executable, "-m", "gllm", *args]


@pytest.fixture
def run_balancer(tmp_path: Path) -> Iterator[Any]:
    """Start `gllm start-balancer` subprocesses; each is killed after the test if still running."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"balancer-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            gllm_command("start-balancer", *args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        log.close()
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.mark.integration
class TestCommandLine:
    """`gllm start-balancer` and `gllm --version` as real processes."""

    def test_version(self) -> None:
        """`gllm --version` prints the package version."""
        result = subprocess.run(
            gllm_command("--version"), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0
        assert result.stdout.strip() == f"gllm {gllm.__version__}"

    @pytest.mark.slow
    def test_start_balancer_serves_and_stops_on_sigterm(
        self, farm: FakeWorkerFarm, run_balancer: Any
    ) -> None:
        """It registers --existing-workers, asks them to load --load-model, serves, and exits 0 on SIGTERM."""
        worker = farm.add()
        port = free_port()
        proc = run_balancer(
            "--ip", "127.0.0.1", "--port", str(port), "--existing-workers", worker.url, "--load-model", "m"
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/health", timeout=60)
        wait_until(lambda: any(r.path == "/load_model" for r in worker.requests), what="load_model received")
        (load,) = [r.json() for r in worker.requests if r.path == "/load_model"]
        assert load["model_path"] == "m"
        with httpx.Client(base_url=url, timeout=30) as http:
            assert [w["address"] for w in http.get("/workers").json()] == [worker.url]
            assert http.post("/v1/chat/completions", json={"model": "m"}).status_code == 200
            assert http.post("/add_worker", json={"address": farm.add().url}).text == "m"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    @pytest.mark.slow
    def test_short_flags_env_key_and_sigint(self, farm: FakeWorkerFarm, run_balancer: Any) -> None:
        """-p and -ew work, GLLM_ADMIN_KEY guards control routes, and SIGINT exits 0 too."""
        worker = farm.add()
        port = free_port()
        proc = run_balancer(
            "--ip", "127.0.0.1", "-p", str(port), "-ew", worker.url, env={"GLLM_ADMIN_KEY": "k"}
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/health", timeout=60)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/release_gpus").status_code == 401
            assert http.post("/release_gpus", headers={"Authorization": "Bearer k"}).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0

    @pytest.mark.parametrize("value", ["abc", "0"])
    def test_bad_check_size_env(self, value: str) -> None:
        """An invalid CHECK_SIZE stops the start with a clear error and exit status 2."""
        result = subprocess.run(
            gllm_command("start-balancer", "--ip", "127.0.0.1", "-p", str(free_port())),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHECK_SIZE": value},
            check=False,
        )
        assert result.returncode == 2
        assert "check size" in result.stderr.lower().replace("_", " ")
