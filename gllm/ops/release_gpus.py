"""`gllm release-gpus`: stop every worker's engine and free its GPUs."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from gllm.ops.options import add_balancer_options, positive_float

if TYPE_CHECKING:
    from rich.console import Console

HELP = "Stop every worker's engine and free its GPUs (the cluster then has no model)."


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the release-gpus options."""
    add_balancer_options(parser)
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="how long to wait for the workers (300)",
    )


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Release, with a spinner while the engines stop; then each worker's state. 1 when any worker failed."""
    # Imported here: every `gllm` command builds this parser, and the balancer should not load rich or httpx.
    from rich.console import Console
    from rich.table import Table

    from gllm.client import GLLMError, RemoteError
    from gllm.ops.common import describe, fail, open_client

    out = console or Console()
    with open_client(args) as client:
        started = time.monotonic()
        try:
            with out.status("Releasing GPUs on every worker..."):
                reply = client.release_gpus(timeout=args.timeout)
        except RemoteError as exc:
            if exc.status_code == 500:  # some workers did not stop: the message names them
                return fail(exc.message.strip())
            return fail(describe(exc, args.balancer))
        except GLLMError as exc:
            return fail(describe(exc, args.balancer))
        elapsed = time.monotonic() - started
        out.print(f"{reply.strip() or 'Gpus released'} in {elapsed:.1f}s", highlight=False)
        try:
            workers = client.workers()
        except GLLMError:
            return 0  # released; only the follow-up listing failed
    if workers:
        table = Table(header_style="bold", pad_edge=False)
        table.add_column("worker", no_wrap=True)
        table.add_column("state")
        for worker in workers:
            table.add_row(worker.address, worker.state or "unknown")
        out.print(table)
    return 0
