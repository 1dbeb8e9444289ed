"""`gllm start-balancer`: parse flags and environment into a config and serve it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from gllm.balancer.config import DEFAULT_MAX_BODY_BYTES, BalancerConfig, env_check_size
from gllm.balancer.policies import POLICIES
from gllm.balancer.server import serve
from gllm.balancer.state_store import default_state_path
from gllm.logs import configure_logging

HELP = "Start the balancer: one OpenAI-compatible endpoint in front of many workers."


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the balancer's flags."""
    parser.add_argument("-p", "--port", type=int, default=5333, help="port to listen on (default 5333)")
    parser.add_argument("--ip", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument(
        "-ew", "--existing-workers", nargs="+", default=[], metavar="URL", help="workers to register at start"
    )
    parser.add_argument("--load-model", default=None, metavar="MODEL", help="ask every worker to load MODEL")
    parser.add_argument("--policy", default="least_busy", choices=sorted(POLICIES), help="routing policy")
    parser.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="per-policy option, repeatable (see docs/routing.md)",
    )
    parser.add_argument(
        "--engine-metrics-interval", type=float, default=1.0, help="seconds between engine metric scrapes"
    )
    parser.add_argument(
        "--check-size",
        type=int,
        default=None,
        help="workers least-busy samples (default: env CHECK_SIZE or 5)",
    )
    parser.add_argument(
        "--admin-key", default=None, help="key required by control routes (default: env GLLM_ADMIN_KEY)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="request body limit (413 beyond)"
    )
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to connect to a worker")
    parser.add_argument("--health-timeout", type=float, default=2.0, help="seconds for one health probe")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        help="seconds for a whole generation (default: no limit)",
    )
    reliability = parser.add_argument_group("reliability")
    reliability.add_argument(
        "--first-byte-timeout", type=float, default=120.0, help="seconds to a worker's first byte"
    )
    reliability.add_argument(
        "--idle-timeout", type=float, default=120.0, help="seconds of silence within a stream"
    )
    reliability.add_argument(
        "--no-failover", action="store_true", help="do not continue a broken stream on another worker"
    )
    reliability.add_argument(
        "--max-attempts", type=int, default=3, help="workers tried per request (default 3)"
    )
    reliability.add_argument(
        "--health-interval", type=float, default=5.0, help="seconds between health checks"
    )
    reliability.add_argument("--unhealthy-threshold", type=int, default=3, help="failed checks that eject")
    reliability.add_argument("--healthy-threshold", type=int, default=2, help="passed checks that readmit")
    reliability.add_argument(
        "--breaker-failures", type=int, default=5, help="failures in a row that open a breaker"
    )
    reliability.add_argument(
        "--breaker-open-seconds", type=float, default=10.0, help="seconds a breaker stays open"
    )
    reliability.add_argument(
        "--max-in-flight-per-worker", type=int, default=None, help="cap per worker; beyond it requests queue"
    )
    reliability.add_argument("--max-queue", type=int, default=1024, help="requests that may wait for a slot")
    reliability.add_argument(
        "--queue-timeout", type=float, default=30.0, help="seconds a request may wait (429)"
    )
    reliability.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds to finish requests on stop"
    )
    reliability.add_argument(
        "--state-file",
        default=None,
        help="where workers and model are saved (default ~/.local/state/gllm/...)",
    )
    reliability.add_argument(
        "--no-state-file", action="store_true", help="do not remember the cluster on disk"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="log lines as text or JSON"
    )
    parser.add_argument("--access-log", action="store_true", help="log one line per request (off by default)")


def config_from_args(args: argparse.Namespace) -> BalancerConfig:
    """Build the config from parsed flags and the environment."""
    return BalancerConfig(
        host=args.ip,
        port=args.port,
        existing_workers=tuple(args.existing_workers),
        load_model=args.load_model,
        policy=args.policy,
        policy_options=tuple(args.policy_option),
        engine_metrics_interval=args.engine_metrics_interval,
        check_size=args.check_size if args.check_size is not None else env_check_size(),
        admin_key=args.admin_key or os.environ.get("GLLM_ADMIN_KEY") or None,
        max_body_bytes=args.max_body_bytes,
        connect_timeout=args.connect_timeout,
        health_timeout=args.health_timeout,
        request_timeout=args.request_timeout,
        first_byte_timeout=args.first_byte_timeout,
        idle_timeout=args.idle_timeout,
        failover=not args.no_failover,
        max_attempts=args.max_attempts,
        health_interval=args.health_interval,
        unhealthy_threshold=args.unhealthy_threshold,
        healthy_threshold=args.healthy_threshold,
        breaker_failures=args.breaker_failures,
        breaker_open_seconds=args.breaker_open_seconds,
        max_in_flight_per_worker=args.max_in_flight_per_worker,
        max_queue=args.max_queue,
        queue_timeout=args.queue_timeout,
        drain_timeout=args.drain_timeout,
        access_log=args.access_log,
        state_file=None if args.no_state_file else (args.state_file or str(default_state_path(args.port))),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    configure_logging(args.log_level, args.log_format)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"gllm start-balancer: error: {exc}", file=sys.stderr)
        return 2
    return run_forever(config)


def run_forever(config: BalancerConfig) -> int:
    """Run the balancer on uvloop (when installed) until a signal arrives."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    except OSError as exc:
        print(f"gllm start-balancer: error: {exc}", file=sys.stderr)
        return 1
    return 0
