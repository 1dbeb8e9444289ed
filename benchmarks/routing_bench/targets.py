"""The routers under test: GLLM's balancer with each policy, the SGLang router and the vLLM router."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from routing_bench.engines import HOST
from routing_bench.loadgen import probe

PEERS = Path(os.environ.get("PEERS_DIR", "/tmp/gllm-peers"))
GLLM_POLICIES = ("least_busy", "round_robin", "random", "session", "prefix", "load")


@dataclass(frozen=True)
class Target:
    """One router configuration."""

    router: str  # "gllm", "sglang" or "vllm"
    policy: str
    options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """e.g. gllm:prefix, sglang:cache_aware."""
        return f"{self.router}:{self.policy}"

    def executable(self) -> Path | None:
        """The peer's program, or None for GLLM (always available)."""
        if self.router == "sglang":
            return PEERS / "sglang" / "bin" / "python"
        if self.router == "vllm":
            return PEERS / "vllm" / "bin" / "vllm-router"
        return None

    def missing(self) -> str | None:
        """Why this target cannot run here, or None."""
        exe = self.executable()
        if exe is not None and not exe.exists():
            return f"{exe} not found (run ../shared/bench/setup_peers.sh)"
        return None

    def command(self, port: int, workers: list[str], metrics_port: int) -> list[str]:
        """The router's command line."""
        if self.router == "gllm":
            prefix = shlex.split(os.environ.get("GLLM_BALANCER_CMD", "")) or gllm_command()
            cmd = [*prefix, "start-balancer", "--ip", HOST, "--port", str(port), "--policy", self.policy]
            cmd += ["--log-level", "warning"]
            for option in self.options:
                cmd += ["--policy-option", option]
            return cmd
        common = ["--host", HOST, "--port", str(port), "--worker-urls", *workers, "--policy", self.policy]
        common += ["--prometheus-host", HOST, "--prometheus-port", str(metrics_port)]
        if self.router == "sglang":
            return [
                str(self.executable()),
                "-m",
                "sglang_router.launch_router",
                *common,
                "--log-level",
                "warn",
            ]
        return [str(self.executable()), *common, "--log-level", "error"]


def gllm_command() -> list[str]:
    """How this benchmark starts GLLM: the installed package, from this interpreter."""
    return [sys.executable, "-m", "gllm"]


def all_targets() -> list[Target]:
    """Our policies, then the peers' (cache-aware and their load-based / session-hash policies)."""
    return [
        *(Target("gllm", p) for p in GLLM_POLICIES),
        Target("sglang", "cache_aware"),
        Target("sglang", "power_of_two"),
        Target("vllm", "cache_aware"),
        Target("vllm", "consistent_hash"),
    ]


class RunningRouter:
    """A started router process; `stop()` ends its whole process group."""

    def __init__(self, target: Target, port: int, workers: list[str], metrics_port: int, log: Path) -> None:
        self.target = target
        self.url = f"http://{HOST}:{port}"
        self._workers = workers
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                target.command(port, workers, metrics_port),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Register the engines (GLLM) and wait until a real request succeeds."""
        deadline = time.monotonic() + timeout
        registered = self.target.router != "gllm"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target.name} exited with code {self.proc.returncode}")
            try:
                if not registered:
                    for worker in self._workers:
                        _post(self.url + "/add_worker", {"address": worker})
                    registered = True
                if registered and asyncio.run(probe(self.url)):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.target.name} not ready after {timeout:.0f}s")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _post(url: str, body: dict[str, str]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
