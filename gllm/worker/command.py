"""`gllm start-worker`: serve the worker protocol in front of one supervised engine process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from gllm.worker.config import WorkerConfig
from gllm.worker.engines import DEFAULT_ENGINE, PRESETS, parse_gpus
from gllm.worker.server import serve
from gllm.worker.supervisor import SupervisorConfig

HELP = "Start a worker agent that supervises one engine (vLLM, SGLang, llama.cpp or the simulator)."


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of `gllm start-worker`."""
    parser.add_argument("-p", "--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--ip", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument(
        "--engine",
        choices=sorted(PRESETS),
        default=DEFAULT_ENGINE,
        help=f"engine preset (default {DEFAULT_ENGINE})",
    )
    parser.add_argument(
        "--engine-cmd",
        metavar="TEMPLATE",
        help="custom engine command; placeholders {model} {engine_port} {tp} {pp} {n_gpus} {gpus} {python}",
    )
    parser.add_argument("--engine-port", type=int, help="port of the engine (default: port + 10)")
    parser.add_argument(
        "--gpus", default="", help="GPU ids for the engine, such as 0,1 (CUDA_VISIBLE_DEVICES)"
    )
    parser.add_argument("--model", help="model to load at start")
    parser.add_argument(
        "--balancer", metavar="URL", help="balancer to register with, such as http://host:5333"
    )
    parser.add_argument(
        "--advertise-address",
        metavar="URL",
        help="URL the balancer should use for this worker (default: derived)",
    )
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("GLLM_ADMIN_KEY"),
        help="the balancer's admin key, sent when registering (default: env GLLM_ADMIN_KEY)",
    )
    parser.add_argument(
        "--register-interval", type=float, default=30.0, help="seconds between re-registrations"
    )
    parser.add_argument(
        "--load-timeout",
        type=float,
        default=1800.0,
        help="seconds for the engine to become healthy (default 1800)",
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=15.0,
        help="seconds between SIGTERM and SIGKILL of the engine (default 15)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=0.0,
        help="total seconds per relayed request (default 0: unlimited)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    """Validate the flags into a WorkerConfig (ValueError with a readable message when they are wrong)."""
    return WorkerConfig(
        host=args.ip,
        port=args.port,
        engine=args.engine,
        engine_cmd=args.engine_cmd,
        engine_port=args.engine_port,
        gpus=tuple(parse_gpus(args.gpus)),
        model=args.model or None,
        balancer=args.balancer or None,
        advertise_address=args.advertise_address or None,
        admin_key=args.admin_key or None,
        register_interval=args.register_interval,
        request_timeout=args.request_timeout or None,
        supervisor=SupervisorConfig(load_timeout=args.load_timeout, stop_grace=args.stop_grace),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad flags."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"gllm start-worker: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config))
    return int(uvloop.run(serve(config)))
