"""Ports and readiness: wait on a condition with a deadline, never on a fixed sleep."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that was free a moment ago (prefer binding port 0 where the server allows it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll `predicate` until it is truthy; raise TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except Exception as exc:  # a probe that raises counts as "not yet"
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s (last error: {last_error!r})")
        time.sleep(interval)


def wait_for_http(url: str, timeout: float = 30.0, status: int = 200) -> None:
    """Wait until GET `url` answers with `status`."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status) == status
        except urllib.error.HTTPError as exc:
            return exc.code == status

    wait_until(probe, timeout=timeout, what=f"GET {url} -> {status}")
