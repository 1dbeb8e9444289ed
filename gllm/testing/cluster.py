"""`gllm start-cluster` in tests: a free port layout, and the cluster as a subprocess whose tree is watched.

Every process the cluster ever showed as a descendant is remembered, so that a test can check that all of them
are gone after a stop, and so that `close()` can kill all of them even when the test failed half-way.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

import httpx
import psutil

from gllm.cluster.plan import ENGINE_PORT_OFFSET, WORKER_PORT_STEP
from gllm.testing.net import free_port, wait_until

DEMO_MODEL = "demo-model"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound on `host` right now (no SO_REUSEADDR: stricter than the servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_worker_base(
    workers: int,
    *,
    low: int = 20000,
    high: int = 32000,
    attempts: int = 500,
    rng: random.Random | None = None,
) -> int:
    """A base port such that each worker port (base + 100*i) and engine port (+10) is free."""
    rng = rng or random.Random()
    top = high - WORKER_PORT_STEP * workers - ENGINE_PORT_OFFSET
    for _ in range(attempts):
        base = rng.randrange(low, top)
        ports = [
            base + WORKER_PORT_STEP * i + offset for i in range(workers) for offset in (0, ENGINE_PORT_OFFSET)
        ]
        if all(port_free(port) for port in ports):
            return base
    raise RuntimeError(f"no free port layout for {workers} workers in {low}-{high}")


def alive(proc: psutil.Process) -> bool:
    """Whether the process runs (a zombie counts as gone)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cmdline(proc: psutil.Process) -> list[str]:
    """The command line of a process, [] once it is gone."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


class ClusterProcess:
    """`python -m gllm start-cluster ...` started in its own session, with its output collected."""

    def __init__(
        self, *args: str, workers: int = 2, port: int | None = None, base: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.base = base or free_worker_base(workers)
        self.argv = [
            sys.executable,
            "-m",
            "gllm",
            "start-cluster",
            "--port",
            str(self.port),
            "--ip",
            "127.0.0.1",
            "--worker-port-range-start",
            str(self.base),
            *args,
        ]
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.seen: dict[int, psutil.Process] = {}
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C in the test's terminal is not also delivered to the cluster
        )
        self._reader = threading.Thread(target=self._read, name="cluster-output", daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        """The balancer's URL."""
        return f"http://127.0.0.1:{self.port}"

    def worker_port(self, index: int) -> int:
        """Port of worker `index`."""
        return self.base + WORKER_PORT_STEP * index

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def output(self) -> str:
        """Everything the cluster printed so far (its own lines and its children's)."""
        with self._lock:
            return "\n".join(self._lines)

    def workers(self) -> list[dict[str, Any]]:
        """The balancer's GET /workers."""
        response = httpx.get(f"{self.url}/workers", timeout=5.0)
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data

    def ready_count(self, model: str | None = None) -> int:
        """Workers that are ready (with `model`, when given)."""
        return sum(
            1 for w in self.workers() if w["state"] == "ready" and (model is None or w["model"] == model)
        )

    def wait_ready(self, count: int, model: str | None = None, timeout: float = 90.0) -> None:
        """Wait until `count` workers are ready; the cluster's output is in the error otherwise."""
        try:
            wait_until(
                lambda: self.ready_count(model) == count, timeout=timeout, interval=0.2, what="workers ready"
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- cluster output ---\n{self.output()}") from None

    def wait_output(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the cluster printed `text`."""
        try:
            wait_until(lambda: text in self.output(), timeout=timeout, interval=0.1, what=f"output {text!r}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- cluster output ---\n{self.output()}") from None

    def descendants(self) -> list[psutil.Process]:
        """Living descendants now; each is also remembered in `seen`."""
        try:
            found = [p for p in psutil.Process(self.proc.pid).children(recursive=True) if alive(p)]
        except psutil.Error:
            return []
        for proc in found:
            self.seen.setdefault(proc.pid, proc)
        return found

    def find(self, *words: str) -> list[psutil.Process]:
        """Living descendants whose command line contains every one of `words`."""
        return [p for p in self.descendants() if all(w in cmdline(p) for w in words)]

    def worker_process(self, index: int) -> psutil.Process:
        """The (current) process of worker `index`."""
        found = self.find("start-worker", "--port", str(self.worker_port(index)))
        if len(found) != 1:
            raise LookupError(f"expected one process for worker {index}, found {found}")
        return found[0]

    def leftovers(self) -> list[psutil.Process]:
        """Remembered processes (and the cluster itself) that still run."""
        procs = [*self.seen.values()]
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(self.proc.pid))
        return [p for p in procs if alive(p) and (p.pid != self.proc.pid or self.proc.poll() is None)]

    def send(self, sig: signal.Signals) -> None:
        """Signal the cluster process."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the cluster to exit; its exit code."""
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill the cluster and every process it ever had, whatever state the test left them in."""
        self.descendants()
        if self.proc.poll() is None:
            self.proc.kill()
        for proc in self.seen.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
