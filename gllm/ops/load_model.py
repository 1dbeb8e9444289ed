"""`gllm load-model MODEL [--wait] [--timeout S] [--force-reload]`: load a model on every worker."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from gllm.ops.options import add_balancer_options, positive_float

if TYPE_CHECKING:
    from rich.console import Console

    from gllm.client import GLLM

HELP = "Ask every worker to load a model; with --wait, show the workers becoming ready."
REQUEST_TIMEOUT_S = 60.0  # the balancer answers once every worker accepted (workers answer at once)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the load-model options."""
    parser.add_argument("model", metavar="MODEL", help="model name or path, as the workers' engine takes it")
    add_balancer_options(parser)
    parser.add_argument("--wait", action="store_true", help="wait until every worker serves the model")
    parser.add_argument(
        "--timeout", type=positive_float, default=900.0, metavar="S", help="how long --wait waits (900)"
    )
    parser.add_argument("--force-reload", action="store_true", help="restart engines that already have it")
    parser.add_argument(
        "--interval", type=positive_float, default=1.0, metavar="S", help="seconds between checks (1)"
    )


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Request the load; with --wait, follow it until every worker is ready (0), one fails or time runs out (1)."""
    # Imported here: every `gllm` command builds this parser, and the balancer should not load rich or httpx.
    from rich.console import Console

    from gllm.client import GLLMError
    from gllm.ops.common import describe, fail, open_client

    out = console or Console()
    with open_client(args) as client:
        started = time.monotonic()
        try:
            reply = client.load_model(args.model, force_reload=args.force_reload, timeout=REQUEST_TIMEOUT_S)
        except GLLMError as exc:
            return fail(describe(exc, args.balancer))
        out.print(f"{reply.strip() or 'Model load requested'}: {args.model}", highlight=False)
        if not args.wait:
            return 0
        return _wait(args, out, client, started)


def _wait(args: argparse.Namespace, out: Console, client: GLLM, started: float) -> int:
    """Poll the workers until every one serves the model, one fails, or the timeout passes."""
    from gllm.client import GLLMError
    from gllm.ops.common import describe, fail
    from gllm.ops.load_progress import LoadProgressBar, LoadTracker

    tracker = LoadTracker(args.model, started)
    deadline = started + args.timeout
    with LoadProgressBar(args.model, out) as bar:
        while True:
            note = ""
            try:
                bar.show(tracker, tracker.update(client.workers(), time.monotonic()))
            except GLLMError as exc:  # a blip while polling is not the end of the load
                note = describe(exc, args.balancer)
                bar.show(tracker, [], note)
            if tracker.failed:
                break
            if tracker.done or time.monotonic() >= deadline:
                break
            time.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - started
    if tracker.failed:
        return fail(f"{args.model} failed to load on {len(tracker.failed)} worker(s); see above")
    if not tracker.done:
        return fail(f"{args.model} not ready within {args.timeout:g}s: {note or tracker.summary()}")
    slowest = max(tracker.ready.items(), key=lambda item: item[1])
    out.print(
        f"{args.model} ready on {tracker.total} worker(s) after {elapsed:.1f}s "
        f"(slowest: {slowest[0]}, {slowest[1]:.1f}s)",
        highlight=False,
    )
    return 0
