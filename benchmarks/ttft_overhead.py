#!/usr/bin/env python3
"""What the balancer adds to time-to-first-token and latency at light load, side by side with direct access.

Uses the shared harness (`../shared/bench`: fake_backend.py and loadgen.py, or BENCH_DIR): starts the fake workers
and one balancer, then alternates runs straight to a worker and through the balancer, and prints the medians and
their differences. Only 127.0.0.1 is contacted; every run is bounded in count and time.

  python benchmarks/ttft_overhead.py --rounds 3 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("BENCH_DIR", HERE.parent.parent / "shared" / "bench"))
HOST = "127.0.0.1"
WORKER_PORTS = (18201, 18202, 18203, 18204)
BALANCER_PORT = 18290


def http_post(url: str, body: dict[str, object]) -> None:
    """POST a JSON body (control call)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def wait_http(url: str, deadline_s: float = 30.0) -> None:
    """Wait until a GET answers at all."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def loadgen(url: str, args: argparse.Namespace, stream: bool) -> dict[str, float]:
    """One bounded load run; returns loadgen's JSON summary."""
    n = args.stream_requests if stream else args.requests
    cmd = [sys.executable, str(BENCH / "loadgen.py"), "--url", url, "-n", str(n), "-c", str(args.concurrency)]
    cmd += ["--max-seconds", "30", "--json"] + (["--stream"] if stream else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--stream-requests", type=int, default=600)
    parser.add_argument("--gllm", default=str(Path(sys.executable).with_name("gllm")))
    args = parser.parse_args()
    ports = ",".join(map(str, WORKER_PORTS))
    backend = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_backend.py"), "--ports", ports, "--max-seconds", "900"],
        stdout=subprocess.DEVNULL,
    )
    balancer = subprocess.Popen(
        [args.gllm, "start-balancer", "--ip", HOST, "--port", str(BALANCER_PORT), "--log-level", "warning"]
    )
    try:
        wait_http(f"http://{HOST}:{WORKER_PORTS[0]}/health")
        wait_http(f"http://{HOST}:{BALANCER_PORT}/workers")
        for port in WORKER_PORTS:
            http_post(f"http://{HOST}:{BALANCER_PORT}/add_worker", {"address": f"http://{HOST}:{port}"})
        targets = {
            "direct": f"http://{HOST}:{WORKER_PORTS[0]}/v1/chat/completions",
            "gllm": f"http://{HOST}:{BALANCER_PORT}/v1/chat/completions",
        }
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, url in targets.items():
                plain = loadgen(url, args, stream=False)
                streamed = loadgen(url, args, stream=True)
                for key, value in (
                    ("latency p50 ms", plain["p50_ms"]),
                    ("stream ttft p50 ms", streamed["ttft_p50_ms"]),
                    ("stream total p50 ms", streamed["p50_ms"]),
                ):
                    results.setdefault((name, key), []).append(float(value))
        print(f"\nconcurrency {args.concurrency}, medians of {args.rounds} rounds\n")
        print("| figure | direct | through gllm | added |")
        print("|---|---|---|---|")
        for key in ("latency p50 ms", "stream ttft p50 ms", "stream total p50 ms"):
            direct = statistics.median(results[("direct", key)])
            via = statistics.median(results[("gllm", key)])
            print(f"| {key} | {direct:.2f} | {via:.2f} | {via - direct:+.2f} |")
    finally:
        for proc in (balancer, backend):
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
