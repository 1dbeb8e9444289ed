"""`gllm start-cluster`: a balancer and one worker per GPU group on this machine, in one command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from gllm.balancer.policies import POLICIES
from gllm.cluster.gpuspec import GpuSpecError, worker_gpus
from gllm.cluster.plan import ADMIN_KEY_ENV, ClusterPlan, PlanError, busy_ports
from gllm.cluster.runner import PREFIX, ClusterRunner, RunOptions
from gllm.worker.engines import DEFAULT_ENGINE, PRESETS

HELP = "Start a whole cluster on this machine: the balancer plus one supervised worker per GPU group."

WORKERS_HELP = (
    "GPUs of the workers: 3, 0:3 (inclusive range), 0,2,5 or 0:1,4:5. One spec gives one worker per GPU "
    "(0:3 = four workers); several specs give one worker per spec (0:1 2:3 = two workers of two GPUs)"
)
LOG_LEVELS = ("debug", "info", "warning", "error")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of `gllm start-cluster` (those of the old GLLM command keep their names)."""
    parser.add_argument("-p", "--port", type=int, default=5333, help="balancer port (default 5333)")
    parser.add_argument("--ip", default="0.0.0.0", help="balancer address to bind (default 0.0.0.0)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-w", "--workers", nargs="+", metavar="GPU_SPEC", help=WORKERS_HELP)
    which.add_argument(
        "--num-workers", type=int, metavar="N", help="N workers on GPUs 0..N-1 (handy with --engine sim)"
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=int,
        metavar="N",
        help="split a single --workers spec (or --num-workers) into workers of N GPUs each",
    )
    parser.add_argument(
        "-wp",
        "--worker-port-range-start",
        type=int,
        default=8000,
        metavar="PORT",
        help="worker i listens on PORT + 100*i, its engine on that + 10 (default 8000)",
    )
    parser.add_argument(
        "--worker-ip", default="127.0.0.1", help="address the workers bind (default 127.0.0.1)"
    )
    parser.add_argument("--load-model", metavar="MODEL", help="model every worker loads once registered")
    parser.add_argument(
        "--engine", choices=sorted(PRESETS), default=DEFAULT_ENGINE, help=f"engine (default {DEFAULT_ENGINE})"
    )
    parser.add_argument(
        "--engine-cmd",
        metavar="TEMPLATE",
        help="custom engine command; placeholders {model} {engine_port} {tp} {pp} {n_gpus} {gpus} {python}",
    )
    parser.add_argument(
        "--admin-key",
        default=None,
        help=f"key for the control routes, given to balancer and workers (default: env {ADMIN_KEY_ENV})",
    )
    parser.add_argument("--policy", choices=sorted(POLICIES), help="balancer routing policy")
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=30.0,
        help="seconds between SIGTERM and SIGKILL when stopping (default 30)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        help="seconds for the balancer to answer after start (default 60)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="print no readiness progress, only 'cluster ready'"
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="log level of the children")


def plan_from_args(args: argparse.Namespace) -> ClusterPlan:
    """Validate the flags into a plan; GpuSpecError or PlanError (both ValueError) when they are wrong."""
    groups = worker_gpus(args.workers, num_workers=args.num_workers, gpus_per_worker=args.gpus_per_worker)
    if args.stop_grace < 0:
        raise PlanError("--stop-grace must not be negative")
    if args.startup_timeout <= 0:
        raise PlanError("--startup-timeout must be positive")
    return ClusterPlan(
        port=args.port,
        ip=args.ip,
        worker_port_start=args.worker_port_range_start,
        worker_gpus=groups,
        engine=args.engine,
        engine_cmd=args.engine_cmd or None,
        worker_ip=args.worker_ip,
        load_model=args.load_model or None,
        admin_key=args.admin_key or os.environ.get(ADMIN_KEY_ENV) or None,
        policy=args.policy,
        log_level=args.log_level,
        # Workers stop their engine first: leave them half of our grace before we SIGKILL them.
        worker_stop_grace=max(1.0, args.stop_grace / 2),
    )


def run(args: argparse.Namespace) -> int:
    """Start the cluster and supervise it until Ctrl-C; 2 on bad flags, 1 when it cannot start."""
    try:
        plan = plan_from_args(args)
    except (GpuSpecError, PlanError) as exc:
        print(f"{PREFIX}: error: {exc}", file=sys.stderr)
        return 2
    busy = busy_ports(plan)
    if busy:
        print(f"{PREFIX}: error: ports already in use: {'; '.join(busy)}", file=sys.stderr)
        print(f"{PREFIX}: choose other ports with --port / --worker-port-range-start", file=sys.stderr)
        return 1
    options = RunOptions(
        stop_grace=args.stop_grace, startup_timeout=args.startup_timeout, progress=not args.no_progress
    )
    return asyncio.run(ClusterRunner(plan, options).run())
