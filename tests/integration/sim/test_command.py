"""`python -m gllm sim-engine` as its own process: ready lines, serving, clean exit on signals."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gllm.sim.command import READY_PREFIX
from gllm.testing import free_port
from gllm.testing.sim import sim_engine_command


class EngineProcess:
    """A sim-engine child process whose stdout lines are collected by a reader thread."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def ready_urls(self, count: int, timeout: float = 30.0) -> list[str]:
        """URLs from the first `count` ready lines."""
        deadline = time.monotonic() + timeout
        urls: list[str] = []
        while len(urls) < count:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line.startswith(READY_PREFIX), line
            urls.append(line.split()[2])
        return urls

    def stop(self) -> None:
        """Kill the process if the test left it running."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def spawn() -> Iterator[type[EngineProcess]]:
    """Start sim-engine processes that are killed after the test whatever happens."""
    started: list[EngineProcess] = []

    class Tracked(EngineProcess):
        def __init__(self, argv: list[str]) -> None:
            super().__init__(argv)
            started.append(self)

    try:
        yield Tracked
    finally:
        for process in started:
            process.stop()


@pytest.mark.integration
class TestSimEngineCommand:
    """The command the worker agent runs."""

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_serves_and_exits_cleanly(self, spawn: type[EngineProcess], sig: signal.Signals) -> None:
        """`--port P --model M`: ready line with the URL, serves M, exit 0 on the signal."""
        port = free_port()
        engine = spawn(sim_engine_command(port, "org/demo", "--load-time", "0.2"))
        (url,) = engine.ready_urls(1)
        assert url == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/health").status_code == 200
            reply = client.post(
                "/v1/completions", json={"model": "org/demo", "prompt": "hi", "max_tokens": 2}
            )
            assert reply.status_code == 200
        engine.proc.send_signal(sig)
        assert engine.proc.wait(timeout=30) == 0

    def test_replicas_in_one_process(self, spawn: type[EngineProcess]) -> None:
        """--replicas 3 --port 0: three ready lines, three distinct working ports."""
        engine = spawn(
            [sys.executable, "-m", "gllm", "sim-engine", "--port", "0", "--replicas", "3", "--load-time", "0"]
        )
        urls = engine.ready_urls(3)
        assert len(set(urls)) == 3
        with httpx.Client(timeout=30) as client:
            assert all(client.get(f"{url}/v1/models").status_code == 200 for url in urls)
        engine.proc.terminate()
        assert engine.proc.wait(timeout=30) == 0

    def test_several_served_names(self, spawn: type[EngineProcess]) -> None:
        """`--served-model-name A B`: both names answer, a third is 404; the ready line shows the first."""
        port = free_port()
        names = ("/ckpt/step-100/", "step-100")
        engine = spawn(
            sim_engine_command(port, "/ckpt/step-100/", "--load-time", "0", "--served-model-name", *names)
        )
        line = engine.lines.get(timeout=30)
        assert line == f"{READY_PREFIX} http://127.0.0.1:{port} model=/ckpt/step-100/"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert [card["id"] for card in client.get("/v1/models").json()["data"]] == list(names)
            for name in names:
                reply = client.post("/v1/completions", json={"model": name, "prompt": "hi", "max_tokens": 2})
                assert (reply.status_code, reply.json()["model"]) == (200, name)
            unknown = client.post(
                "/v1/completions", json={"model": "step-200", "prompt": "hi", "max_tokens": 2}
            )
            assert unknown.status_code == 404

    def test_busy_port_fails(self, spawn: type[EngineProcess]) -> None:
        """A port already in use is reported with exit code 1."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            engine = spawn(sim_engine_command(holder.getsockname()[1]))
            assert engine.proc.wait(timeout=30) == 1
        assert engine.proc.stderr is not None
        assert "cannot listen" in engine.proc.stderr.read()
