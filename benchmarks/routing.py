#!/usr/bin/env python3
"""Routing benchmark: GLLM's policies beside the SGLang and vLLM routers on one simulated 8-engine cluster.

For each workload and each router configuration it starts 8 simulated engines (one process, fresh caches), starts
the router (GLLM's balancer as `python -m gllm start-balancer --policy NAME`, engines registered through
POST /add_worker; peers from the virtualenvs under $PEERS_DIR, default /tmp/gllm-peers, see
../shared/bench/setup_peers.sh; a missing peer is skipped with a note), runs the workload (fixed seeds, bounded
counts, streamed requests), reads the engines' prefix-cache counters, and stops both. Writes
benchmarks/results/routing.md (tables and goals), routing.png and routing.jsonl. Only 127.0.0.1 is used.

  python benchmarks/routing.py                       # everything (about 10 minutes on 2 cores)
  python benchmarks/routing.py --workloads w3 --targets gllm:prefix,sglang:cache_aware --scale 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from routing_bench.engines import EngineSet
from routing_bench.loadgen import run_workload
from routing_bench.report import chart, goals, table
from routing_bench.targets import RunningRouter, Target, all_targets
from routing_bench.workloads import Workload, all_workloads

HERE = Path(__file__).resolve().parent
ENGINES = 8
# Requests per second the 8 engines sustain on the short chats (closed loop at 128 and 192: 68-70 req/s).
DEFAULT_CAPACITY = 70.0


def free_port() -> int:
    """A port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_async(coro: Any) -> Any:
    """Run a coroutine on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def measure(
    workload: Workload, target: Target, ports: list[int], logs: Path, max_seconds: float = 25.0
) -> dict[str, Any]:
    """One run on fresh engines and a fresh router; returns the result row."""
    row: dict[str, Any] = {"workload": workload.key, "target": target.name}
    missing = target.missing()
    if missing:
        return {**row, "skipped": missing}
    speeds = [1.0] * (ENGINES - workload.slow_engines) + [1 / 3] * workload.slow_engines
    engines = EngineSet(ports, speeds)
    engines.start(logs / "engines.log")
    router = None
    try:
        router = RunningRouter(
            target, free_port(), engines.urls, free_port(), logs / f"{target.name.replace(':', '-')}.log"
        )
        router.wait_ready()
        hits0, queries0 = engines.prefix_cache_counts()
        result = run_async(run_workload(router.url, workload, max_seconds))
        hits1, queries1 = engines.prefix_cache_counts()
    except RuntimeError as exc:
        return {**row, "skipped": str(exc)}
    finally:
        if router is not None:
            router.stop()
        engines.stop()
    queries = queries1 - queries0
    return {**row, **result.summary(), "hit_rate": (hits1 - hits0) / queries if queries else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="w1,w2,w3,w4,w5", help="comma list of w1..w5")
    parser.add_argument("--targets", default="", help="comma list of router:policy (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every workload's request count")
    parser.add_argument(
        "--capacity", type=float, default=DEFAULT_CAPACITY, help="cluster req/s for w4/w5 rates"
    )
    parser.add_argument(
        "--gllm-option", action="append", default=[], metavar="POLICY:KEY=VALUE", help="a GLLM policy option"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=25.0, help="no request starts later in a run (slow routers)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where results are written")
    args = parser.parse_args()

    options: dict[str, list[str]] = {}
    for item in args.gllm_option:
        policy, _, option = item.partition(":")
        options.setdefault(policy, []).append(option)
    targets = [
        Target(t.router, t.policy, tuple(options.get(t.policy, ()))) if t.router == "gllm" else t
        for t in all_targets()
    ]
    if args.targets:
        wanted = args.targets.split(",")
        targets = [t for t in targets if t.name in wanted]
    workloads = [w for w in all_workloads(args.scale, args.capacity) if w.key in args.workloads.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    ports = [free_port() for _ in range(ENGINES)]
    titles = {w.key: w.title for w in workloads}
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    print(f"{len(workloads)} workloads x {len(targets)} targets; logs in {logs}", flush=True)
    for workload in workloads:
        print(f"== {workload.key} {workload.title}: {workload.count} requests", flush=True)
        for target in targets:
            row = measure(workload, target, ports, logs, args.max_seconds)
            rows.append(row)
            if "skipped" in row:
                print(f"  {target.name:<22} skipped: {row['skipped']}", flush=True)
            else:
                print(
                    f"  {target.name:<22} {row['req_s']:6.1f} req/s {row['out_tok_s']:6.0f} tok/s "
                    f"ttft p50 {row['ttft_p50'] * 1000:6.0f} p99 {row['ttft_p99'] * 1000:6.0f} ms "
                    f"e2e p50 {row['e2e_p50']:5.2f} p99 {row['e2e_p99']:5.2f} s hit {row['hit_rate'] * 100:5.1f}% "
                    f"err {row['errors']}" + (" (capped)" if row["capped"] else ""),
                    flush=True,
                )
    elapsed = time.monotonic() - started
    with (args.out / "routing.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    how = chart(rows, args.out / "routing.png")
    checks = goals(rows)
    text = (
        "# Routing benchmark\n\n"
        f"`python benchmarks/routing.py {' '.join(sys.argv[1:])}`: {len(workloads)} workloads x {len(targets)} "
        f"targets in {elapsed:.0f} s; 8 simulated engines, fresh for every run. Chart: routing.png ({how}).\n\n"
        + table(rows, titles)
        + "\n## Goals\n\n"
        + "\n".join(checks)
        + "\n"
    )
    (args.out / "routing.md").write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
