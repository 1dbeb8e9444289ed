"""The benchmark's cluster: simulated engines in one process, and how to start, reset and read them.

Run as a script it serves the engines described by a JSON spec until SIGTERM:
  python engines.py '{"ports": [..], "speeds": [..], "config": {SimConfig fields}}'
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
READY = "engines ready"

# The simulated GPU: prefill is paid per uncached prompt token, a decode step grows with the batch, a batch
# holds 16 sequences and the KV cache ~16k tokens (a few long prompts), so routing decides cache hits and queues.
SIM_CONFIG: dict[str, Any] = {
    "model": "sim-model",
    "load_time_s": 0.0,
    "wake_time_s": 0.0,
    "prefill_time_per_token_s": 0.0002,
    "decode_base_step_s": 0.04,
    "decode_per_seq_step_s": 0.002,
    "max_num_seqs": 16,
    "max_num_batched_tokens": 8192,
    "max_model_len": 8192,
    "block_size": 16,
    "num_blocks": 1024,
}


@dataclass
class EngineSet:
    """Engines of one run: their ports and speeds, and the process serving them."""

    ports: list[int]
    speeds: list[float]
    config: dict[str, Any] = field(default_factory=lambda: dict(SIM_CONFIG))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> list[str]:
        """Base URLs of the engines."""
        return [f"http://{HOST}:{port}" for port in self.ports]

    def start(self, log: Path, timeout: float = 60.0) -> None:
        """Start the engine process and wait for its ready line."""
        spec = json.dumps({"ports": self.ports, "speeds": self.speeds, "config": self.config})
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, spec],
                stdout=subprocess.PIPE,
                stderr=sink,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith(READY):
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"simulated engines did not start; see {log}")

    def stop(self) -> None:
        """Stop the engine process (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def prefix_cache_counts(self) -> tuple[float, float]:
        """Sum over engines of (prefix-cache hit tokens, queried tokens)."""
        hits = queries = 0.0
        for url in self.urls:
            with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
            for line in text.splitlines():
                if line.startswith("vllm:prefix_cache_hits_total"):
                    hits += float(line.rsplit(" ", 1)[1])
                elif line.startswith("vllm:prefix_cache_queries_total"):
                    queries += float(line.rsplit(" ", 1)[1])
        return hits, queries


async def _serve(spec: dict[str, Any]) -> None:
    from gllm.sim import SimCluster, SimConfig

    base = SimConfig(**spec["config"])
    configs = [
        base.replace(host=HOST, port=port, speed=speed, seed=i)
        for i, (port, speed) in enumerate(zip(spec["ports"], spec["speeds"], strict=True))
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimCluster(configs):
        print(READY, flush=True)
        await stop.wait()


def main() -> None:
    """Serve the engines of the JSON spec in argv[1] until SIGTERM."""
    from gllm.sim import new_event_loop

    spec = json.loads(sys.argv[1])
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(spec))


if __name__ == "__main__":
    main()
