"""Command-line options of the operator commands (light: importing this costs nothing)."""

from __future__ import annotations

import argparse
import os

DEFAULT_BALANCER = "http://127.0.0.1:5333"
BALANCER_ENV = "GLLM_BALANCER"
ADMIN_KEY_ENV = "GLLM_ADMIN_KEY"


def add_balancer_options(parser: argparse.ArgumentParser) -> None:
    """--balancer URL and --admin-key KEY (with their environment variables)."""
    parser.add_argument(
        "--balancer",
        "-b",
        default=os.environ.get(BALANCER_ENV) or DEFAULT_BALANCER,
        metavar="URL",
        help=f"the balancer's address (default: ${BALANCER_ENV} or {DEFAULT_BALANCER})",
    )
    parser.add_argument(
        "--admin-key",
        default=os.environ.get(ADMIN_KEY_ENV) or None,
        metavar="KEY",
        help=f"the balancer's admin key, needed for control routes when it has one (default: ${ADMIN_KEY_ENV})",
    )


def positive_float(text: str) -> float:
    """argparse type: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, got {text}")
    return value
