"""The real `gllm start-worker` command as a subprocess: no engine outlives it, however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gllm.testing import free_port, wait_for_http, wait_until
from gllm.testing.engine import process_gone


class WorkerProcess:
    """`gllm start-worker` with the sim engine on loopback ports; its stderr goes to `log_path`."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        """Start it and wait until it serves."""
        argv = [sys.executable, "-m", "gllm", "start-worker", "--ip", "127.0.0.1", "--port", str(self.port)]
        argv += ["--engine", "sim", "--engine-port", str(free_port()), "--stop-grace", "5", *extra]
        with self.log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block the worker
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        wait_for_http(self.url + "/status", timeout=60)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running subprocess."""
        assert self.proc is not None
        return self.proc

    def status(self) -> dict[str, Any]:
        """GET /status."""
        return dict(httpx.get(self.url + "/status", timeout=5).json())

    def wait_ready(self) -> int:
        """Wait for the engine to be ready; its pid."""
        wait_until(lambda: self.status()["state"] == "ready", timeout=60, what="worker ready")
        pid = self.status()["engine_pid"]
        assert isinstance(pid, int)
        return pid

    def close(self) -> None:
        """Make sure the worker is gone (the test may have failed halfway)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


WorkerStarter = Callable[..., WorkerProcess]


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[WorkerStarter]:
    """Start worker subprocesses; each is stopped after the test."""
    started: list[WorkerProcess] = []

    def start(*extra: str) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        worker.start(*extra)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.close()


@pytest.mark.integration
@pytest.mark.slow
class TestNoOrphanEngine:
    """Whatever stops the worker, its engine process goes too."""

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_signal_stops_engine_then_exits_zero(self, worker_process: WorkerStarter, sig: int) -> None:
        """SIGTERM / SIGINT: the engine is stopped first, then the worker exits 0."""
        worker = worker_process("--model", "m")
        engine_pid = worker.wait_ready()
        worker.process.send_signal(sig)
        assert worker.process.wait(timeout=60) == 0
        wait_until(lambda: process_gone(engine_pid), timeout=30, what="engine gone")

    def test_hard_kill_of_the_worker_takes_the_engine_along(self, worker_process: WorkerStarter) -> None:
        """SIGKILL of the worker: PR_SET_PDEATHSIG makes the engine stop as well."""
        if not sys.platform.startswith("linux"):
            pytest.skip("PR_SET_PDEATHSIG is Linux only")
        worker = worker_process()
        assert httpx.post(worker.url + "/load_model", json={"model_path": "m"}, timeout=10).status_code == 200
        engine_pid = worker.wait_ready()
        worker.process.kill()
        worker.process.wait(timeout=30)
        wait_until(lambda: process_gone(engine_pid), timeout=30, what="engine gone after worker SIGKILL")

    def test_bad_flags_exit_2_with_a_message(self) -> None:
        """Wrong flags: exit code 2 and a readable error, nothing started."""
        argv = [sys.executable, "-m", "gllm", "start-worker", "--port", "8000", "--gpus", "0,a"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2
        assert "bad GPU id 'a'" in done.stderr
