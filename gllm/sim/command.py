"""`gllm sim-engine`: serve one or more simulated vLLM engines from one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from gllm.sim.cluster import SimCluster, new_event_loop
from gllm.sim.config import SimConfig
from gllm.sim.server import EngineServer

HELP = "Serve simulated vLLM-compatible engines (CPU only) for tests, demos and benchmarks."
READY_PREFIX = "sim-engine ready:"
_DEFAULTS = SimConfig()

# (flag, SimConfig field, type, help); argparse defaults stay None so SimConfig keeps the only defaults.
_TUNABLES: tuple[tuple[str, str, type, str], ...] = (
    ("--speed", "speed", float, "divides every simulated duration: 2 = twice as fast, 0.5 = twice slower"),
    ("--load-time", "load_time_s", float, "seconds until the model is loaded (/health 503 until then)"),
    ("--wake-time", "wake_time_s", float, "seconds POST /wake_up takes"),
    ("--prefill-time-per-token", "prefill_time_per_token_s", float, "seconds per uncached prompt token"),
    ("--decode-base-step", "decode_base_step_s", float, "seconds of one batch step"),
    ("--decode-per-seq-step", "decode_per_seq_step_s", float, "extra step seconds per running sequence"),
    ("--max-num-seqs", "max_num_seqs", int, "sequences decoded together; more requests wait"),
    ("--max-num-batched-tokens", "max_num_batched_tokens", int, "prompt tokens admitted per step"),
    ("--max-model-len", "max_model_len", int, "longest prompt + completion"),
    ("--block-size", "block_size", int, "tokens per KV cache block"),
    ("--num-gpu-blocks-override", "num_blocks", int, "KV cache capacity in blocks"),
    ("--default-max-tokens", "default_max_tokens", int, "completion length when max_tokens is not given"),
    ("--eos-probability", "eos_probability", float, "chance per token that a sequence ends by itself"),
    ("--seed", "seed", int, "engine seed for requests without a seed (replica i uses seed + i)"),
)
# vLLM flags accepted so that vLLM-style command templates work; they change nothing here.
_IGNORED_VALUED = (
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--gpu-memory-utilization",
    "--dtype",
)
_IGNORED_SWITCHES = ("--trust-remote-code", "--disable-log-requests", "--enable-sleep-mode")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the sim-engine flags."""
    parser.add_argument("model_tag", nargs="?", help="model name, as in `vllm serve MODEL` (same as --model)")
    parser.add_argument("--model", help=f"model name or path (default: {_DEFAULTS.model})")
    parser.add_argument(
        "--served-model-name",
        nargs="+",
        metavar="NAME",
        help="names clients may send as `model`; the first is the main one (default: the model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port of the first engine; 0 = any free port")
    parser.add_argument("--replicas", type=int, default=1, help="engines to serve from this process")
    parser.add_argument("--base-port", type=int, help="replica i listens on base-port + i (default: --port)")
    for flag, field, kind, text in _TUNABLES:
        parser.add_argument(
            flag, dest=field, type=kind, help=f"{text} (default: {getattr(_DEFAULTS, field)})"
        )
    parser.add_argument(
        "--enable-prefix-caching",
        dest="enable_prefix_caching",
        action=argparse.BooleanOptionalAction,
        help="reuse KV blocks of shared prompt prefixes (default: on)",
    )
    for flag in _IGNORED_VALUED:
        parser.add_argument(flag, help=argparse.SUPPRESS)
    for flag in _IGNORED_SWITCHES:
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)


def build_configs(args: argparse.Namespace) -> list[SimConfig]:
    """One SimConfig per replica; raises ValueError on inconsistent flags."""
    if args.replicas < 1:
        raise ValueError("--replicas must be at least 1")
    if args.model_tag and args.model and args.model_tag != args.model:
        raise ValueError(f"model given twice: {args.model_tag!r} and --model {args.model!r}")
    base_port = args.port if args.base_port is None else args.base_port
    if base_port and base_port + args.replicas - 1 > 65535:
        raise ValueError("ports of the replicas exceed 65535")
    common: dict[str, Any] = {field: getattr(args, field) for _, field, _, _ in _TUNABLES}
    common["enable_prefix_caching"] = args.enable_prefix_caching
    common = {field: value for field, value in common.items() if value is not None}
    model = args.model or args.model_tag
    if model:
        common["model"] = model
    seed = common.pop("seed", _DEFAULTS.seed)
    return [
        SimConfig(
            host=args.host,
            port=base_port + i if base_port else 0,
            served_model_name=tuple(args.served_model_name or ()),
            seed=seed + i,
            **common,
        )
        for i in range(args.replicas)
    ]


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; exit 0 then."""
    try:
        configs = build_configs(args)
    except ValueError as exc:
        print(f"gllm sim-engine: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(serve(configs))


async def serve(configs: list[SimConfig]) -> int:
    """Start the engines, print a ready line per engine, stop them on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cluster = SimCluster(configs, wait_ready=False)
    try:
        await cluster.start()
    except OSError as exc:
        print(f"gllm sim-engine: cannot listen: {exc}", file=sys.stderr)
        return 1
    for server in cluster.servers:
        print(f"sim-engine loading: {server.url} model={server.config.name}", file=sys.stderr, flush=True)
    announcers = [asyncio.create_task(_announce(server)) for server in cluster.servers]
    try:
        await stop.wait()
    finally:
        for task in announcers:
            task.cancel()
        for task in announcers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await cluster.stop()
    print("sim-engine stopped", file=sys.stderr, flush=True)
    return 0


async def _announce(server: EngineServer) -> None:
    await server.wait_ready()
    print(f"{READY_PREFIX} {server.url} model={server.config.name}", flush=True)
