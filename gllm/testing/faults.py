"""Fault-injection helpers: real balancer, worker and sim-engine processes on 127.0.0.1, killable by tree.

Every process is started in its own session with its output in a log file (no pipe to fill up). A `ProcessSet`
remembers every process it started and every descendant it ever saw, so that `close()` can kill all of them even
when a test failed half-way (engines run in their own sessions, so a process group kill alone would miss them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from gllm.testing.load import LoadReport
from gllm.testing.net import free_port, wait_for_http, wait_until

MODEL = "sim-model"

# Simulated engines for fault tests: no load time, no prefill cost, a fixed 30 ms step per token, so a stream of
# 40 tokens is in flight for over a second whatever the load (kills and removals land mid-stream).
SIM_FLAGS: tuple[str, ...] = (
    "--load-time",
    "0",
    "--prefill-time-per-token",
    "0",
    "--decode-base-step",
    "0.03",
    "--decode-per-seq-step",
    "0",
)

# Short intervals for tests: a worker that fails two probes 0.5 s apart is ejected; 3 s of silence is a timeout.
BALANCER_FLAGS: tuple[str, ...] = (
    "--health-interval",
    "0.5",
    "--health-timeout",
    "1",
    "--unhealthy-threshold",
    "2",
    "--healthy-threshold",
    "2",
    "--first-byte-timeout",
    "3",
    "--idle-timeout",
    "3",
    "--connect-timeout",
    "2",
    "--drain-timeout",
    "20",
)

_READY_LINE = re.compile(r"sim-engine ready: (http://127\.0\.0\.1:\d+)")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ManagedProcess:
    """One child process in its own session, output collected in `log_path`."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.seen: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            self.seen[self.proc.pid] = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def output(self) -> str:
        """Everything the process (and its children) printed so far."""
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Living descendants now; each is also remembered for close()."""
        try:
            found = [p for p in psutil.Process(self.pid).children(recursive=True) if _alive(p)]
        except psutil.Error:
            return []
        for proc in found:
            self.seen.setdefault(proc.pid, proc)
        return found

    def running(self) -> bool:
        """Whether the process itself still runs."""
        return self.proc.poll() is None

    def kill_tree(self) -> list[int]:
        """SIGKILL the process and every descendant at once (a machine dying); return the pids killed."""
        targets = [*self.descendants(), *[p for p in self.seen.values() if p.pid == self.pid]]
        killed = []
        for proc in targets:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        return killed

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM the process and wait for its exit code."""
        self.descendants()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill the process and everything it ever ran; idempotent."""
        self.descendants()
        if self.running():
            self.proc.kill()
        for proc in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if _alive(proc):
                    proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._log.close()

    def describe(self, tail: int = 40) -> str:
        """The last lines of output, for assertion messages."""
        lines = self.output().splitlines()[-tail:]
        return f"--- {self.name} (pid {self.pid}) ---\n" + "\n".join(lines)


class BalancerProcess(ManagedProcess):
    """`python -m gllm start-balancer` on 127.0.0.1:port."""

    def __init__(self, name: str, port: int, flags: list[str], log_path: Path) -> None:
        self.port = port
        argv = [sys.executable, "-m", "gllm", "start-balancer", "--ip", "127.0.0.1", "--port", str(port)]
        super().__init__(name, [*argv, *flags], log_path)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def wait_listening(self, timeout: float = 60.0) -> None:
        """Wait until GET /workers answers."""
        try:
            wait_for_http(f"{self.url}/workers", timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.describe()}") from None

    def workers(self) -> dict[str, dict[str, Any]]:
        """GET /workers keyed by address."""
        response = httpx.get(f"{self.url}/workers", timeout=10.0)
        response.raise_for_status()
        return {w["address"]: w for w in response.json()}

    def add_worker(self, address: str) -> None:
        """POST /add_worker."""
        response = httpx.post(f"{self.url}/add_worker", json={"address": address}, timeout=10.0)
        assert response.status_code == 200, response.text

    def remove_worker(self, address: str) -> int:
        """POST /remove_worker; the status."""
        return httpx.post(f"{self.url}/remove_worker", json={"address": address}, timeout=10.0).status_code

    def in_flight(self) -> int:
        """Sum of in_flight over every registered worker."""
        return sum(int(w["in_flight"]) for w in self.workers().values())

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every worker's in-flight count is back to zero."""
        wait_until(lambda: self.in_flight() == 0, timeout=timeout, interval=0.1, what="all in_flight == 0")

    def log_count(self, needle: str) -> int:
        """How many output lines contain `needle` (retries and failovers are logged one per line)."""
        return sum(needle in line for line in self.output().splitlines())

    def retries(self) -> int:
        """Attempts this balancer retried on another worker (from its log)."""
        return self.log_count("failed (attempt")

    def failovers(self) -> int:
        """Broken streams this balancer continued on another worker (from its log)."""
        return self.log_count("continuing a broken stream")

    def scenario_figures(self, report: LoadReport, **extra: Any) -> dict[str, Any]:
        """The client's figures plus this balancer's retries, failovers and left-over in-flight count."""
        figures = report.figures()
        retries, failovers = self.retries(), self.failovers()
        figures.update(
            in_flight_after=self.in_flight(),
            retried=retries + failovers,
            balancer_retries=retries,
            balancer_failovers=failovers,
            **extra,
        )
        return figures

    def requests_total(self) -> int:
        """Sum of requests_total over the registered workers (attempts, retries and continuations included)."""
        return sum(int(w["requests_total"]) for w in self.workers().values())


class WorkerProcess(ManagedProcess):
    """`python -m gllm start-worker --engine sim` with a fast simulated engine on its own port."""

    def __init__(self, name: str, port: int, engine_port: int, flags: list[str], log_path: Path) -> None:
        self.port = port
        self.engine_port = engine_port
        template = " ".join(["{python} -m gllm sim-engine --port {engine_port} --model {model}", *SIM_FLAGS])
        argv = [
            sys.executable, "-m", "gllm", "start-worker", "--engine", "sim", "--engine-cmd", template,
            "--ip", "127.0.0.1", "--port", str(port), "--engine-port", str(engine_port),
            "--stop-grace", "5", "--log-level", "INFO", *flags,
        ]  # fmt: skip
        super().__init__(name, argv, log_path)

    @property
    def url(self) -> str:
        """The worker's address as the balancer knows it."""
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        """The worker's GET /status."""
        response = httpx.get(f"{self.url}/status", timeout=5.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def registrations(self) -> int:
        """How many times the worker registered with its balancer (from its /status)."""
        info = self.status().get("balancer") or {}
        return int(info.get("registrations", 0))


class SimReplicasProcess(ManagedProcess):
    """`python -m gllm sim-engine --replicas N --port 0`: N engines in one process, each a plain worker."""

    def __init__(self, name: str, replicas: int, log_path: Path) -> None:
        argv = [
            sys.executable, "-m", "gllm", "sim-engine", "--host", "127.0.0.1", "--port", "0",
            "--replicas", str(replicas), "--model", MODEL, *SIM_FLAGS,
        ]  # fmt: skip
        super().__init__(name, argv, log_path)
        self.replicas = replicas

    def urls(self, timeout: float = 60.0) -> list[str]:
        """The engines' URLs, once every one printed its ready line."""
        found: list[str] = []

        def ready() -> bool:
            found[:] = _READY_LINE.findall(self.output())
            return len(found) >= self.replicas

        try:
            wait_until(ready, timeout=timeout, interval=0.05, what=f"{self.replicas} sim engines ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.describe()}") from None
        return found[: self.replicas]


class ProcessSet:
    """Starts the processes of one test and stops every one of them in `close()`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}-{len(self.started)}.log"

    def balancer(self, *flags: str, port: int | None = None, name: str = "balancer") -> BalancerProcess:
        """Start a balancer with the test flags (plus `flags`) and wait until it listens."""
        proc = BalancerProcess(name, port or free_port(), [*BALANCER_FLAGS, *flags], self._log(name))
        self.started.append(proc)
        proc.wait_listening()
        return proc

    def worker(self, *flags: str, name: str = "worker") -> WorkerProcess:
        """Start a sim worker on free ports (not waited for: start several, then wait for all)."""
        proc = WorkerProcess(name, free_port(), free_port(), list(flags), self._log(name))
        self.started.append(proc)
        return proc

    def sim_replicas(self, replicas: int, name: str = "sims") -> list[str]:
        """Start `replicas` sim engines in one process; return their URLs once ready."""
        proc = SimReplicasProcess(name, replicas, self._log(name))
        self.started.append(proc)
        return proc.urls()

    def describe(self) -> str:
        """The tail of every process's output, for assertion messages."""
        return "\n".join(p.describe() for p in self.started)

    def close(self) -> None:
        """Kill everything started (and everything they started)."""
        for proc in reversed(self.started):
            proc.close()


def wait_workers_ready(balancer: BalancerProcess, addresses: list[str], timeout: float = 90.0) -> None:
    """Wait until every address is registered, ready with MODEL, healthy and not ejected.

    A worker's /health fails while its engine loads, so a new worker is ejected at first and readmitted only
    after `--healthy-threshold` passed probes: "ready" alone does not mean it takes requests yet.
    """

    def ready() -> bool:
        view = balancer.workers()
        return all(
            a in view
            and view[a]["state"] == "ready"
            and view[a]["model"] == MODEL
            and view[a]["healthy"]
            and not view[a]["ejected"]
            and view[a]["breaker"] == "closed"
            for a in addresses
        )

    wait_until(ready, timeout=timeout, interval=0.2, what=f"{len(addresses)} workers ready")


def results_dir() -> Path:
    """Where scenario figures are written: $GLLM_FAULT_RESULTS, else build/faults in the repository."""
    given = os.environ.get("GLLM_FAULT_RESULTS")
    return Path(given) if given else Path(__file__).resolve().parents[2] / "build" / "faults"


def record_figures(scenario: str, figures: dict[str, Any], folder: Path | None = None) -> Path:
    """Print one scenario's figures and write them (JSON per scenario, plus a markdown table of all)."""
    folder = folder or results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    row = {"scenario": scenario, "recorded_at": round(time.time(), 1), **figures}
    print(f"\n[fault figures] {json.dumps(row)}")
    slug = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
    (folder / f"{slug}.json").write_text(json.dumps(row, indent=2) + "\n")
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    columns = ["sent", "succeeded", "failed", "retried"]
    lines = [
        "| scenario | " + " | ".join(columns) + " | details |",
        "|---|" + "---:|" * len(columns) + "---|",
    ]
    for r in rows:
        details = ", ".join(
            f"{k}={v}" for k, v in r.items() if k not in {"scenario", "recorded_at", *columns}
        )
        lines.append(
            f"| {r['scenario']} | " + " | ".join(str(r.get(c, "")) for c in columns) + f" | {details} |"
        )
    (folder / "results.md").write_text("\n".join(lines) + "\n")
    return folder
