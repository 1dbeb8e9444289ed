"""What the operator commands share at run time: the client of the balancer and one-line errors."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import httpx

from gllm.client import GLLM, GLLMConnectionError, GLLMTimeoutError, RemoteError

CONTROL_TIMEOUT_S = 10.0


def open_client(args: argparse.Namespace, http: httpx.Client | None = None) -> GLLM:
    """A client of the balancer that fails fast: no retries, short control timeouts."""
    return GLLM(
        args.balancer,
        api_key=args.admin_key,
        max_retries=0,
        connect_timeout=3.0,
        control_timeout=CONTROL_TIMEOUT_S,
        http_client=http,
    )


def describe(exc: BaseException, balancer: str) -> str:
    """One line saying what went wrong, for a person at a terminal."""
    if isinstance(exc, GLLMConnectionError | httpx.TransportError):
        return (
            f"cannot reach the balancer at {balancer} ({_first_line(exc)}); is it running? (--balancer URL)"
        )
    if isinstance(exc, GLLMTimeoutError):
        return f"the balancer at {balancer} did not answer in time ({_first_line(exc)})"
    if isinstance(exc, RemoteError):
        hint = " (pass --admin-key or set GLLM_ADMIN_KEY)" if exc.status_code == 401 else ""
        return f"the balancer answered {exc.status_code}: {_first_line(exc.message)}{hint}"
    return _first_line(exc)


def fail(message: str, stream: TextIO | None = None) -> int:
    """Print `gllm: error: message` on stderr and return the exit status 1."""
    print(f"gllm: error: {message}", file=stream or sys.stderr)
    return 1


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
