"""`gllm status [--balancer URL] [--watch] [--interval S]`: the cluster as a table, once or live."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from gllm.ops.options import add_balancer_options, positive_float

if TYPE_CHECKING:
    import httpx
    from rich.console import Console

    from gllm.client import GLLM
    from gllm.ops.cluster_view import ClusterView

HELP = "Show the cluster: each worker's state, model, health, breaker, in-flight and traffic."


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the status options."""
    add_balancer_options(parser)
    parser.add_argument("--watch", "-w", action="store_true", help="refresh in place until Ctrl-C")
    parser.add_argument(
        "--interval",
        "-n",
        type=positive_float,
        default=2.0,
        metavar="S",
        help="seconds between refreshes (2)",
    )


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Print the cluster once, or keep it on screen with --watch; 1 when the balancer cannot be reached."""
    # Imported here: every `gllm` command builds this parser, and the balancer should not load rich or httpx.
    import httpx
    from rich.console import Console

    from gllm.client import GLLMError
    from gllm.ops.cluster_view import fetch_view, render_view
    from gllm.ops.common import describe, fail, open_client

    out = console or Console()
    with httpx.Client() as http, open_client(args, http) as client:
        try:
            view = fetch_view(client, http)
        except (GLLMError, httpx.HTTPError) as exc:
            return fail(describe(exc, args.balancer))
        if not args.watch:
            out.print(render_view(view))
            return 0
        try:
            _watch(args, out, client, http, view)
        except KeyboardInterrupt:
            pass
    return 0


def _watch(
    args: argparse.Namespace, out: Console, client: GLLM, http: httpx.Client, view: ClusterView
) -> None:
    """Redraw in place every `args.interval` seconds until interrupted."""
    import httpx
    from rich.live import Live

    from gllm.client import GLLMError
    from gllm.ops.cluster_view import fetch_view, render_error, render_view
    from gllm.ops.common import describe

    last = view
    with Live(render_view(view), console=out, refresh_per_second=4) as live:
        while True:
            time.sleep(args.interval)
            try:
                last = fetch_view(client, http)
                live.update(render_view(last))
            except (GLLMError, httpx.HTTPError) as exc:
                # Keep watching: a restarting balancer comes back, and the last view stays visible below.
                live.update(render_error(describe(exc, args.balancer), last))
