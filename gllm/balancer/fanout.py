"""Calls to every worker at once: health probes, load_model and release_gpus."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from gllm.balancer.registry import Worker
from gllm.http.client import ResponseHead, UpstreamError
from gllm.http.pool import UpstreamPool

_JSON_HEADERS = b"content-type: application/json\r\naccept: application/json\r\n"


@dataclass(frozen=True, slots=True)
class CallResult:
    """One worker's answer to a fanned-out call: a status, or the error that prevented one."""

    worker: Worker
    status: int | None
    body: bytes
    error: str | None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """`address (reason)` for an error message."""
        if self.error is not None:
            reason = self.error
        else:
            text = self.body.decode("utf-8", "replace").strip()
            reason = f"HTTP {self.status}" + (f": {text[:200]}" if text else "")
        return f"{self.worker.address} ({reason})"


async def call(
    pool: UpstreamPool, worker: Worker, method: str, path: str, body: bytes, timeout: float
) -> CallResult:
    """One control call with a deadline; never raises for network trouble."""
    try:
        async with asyncio.timeout(timeout):
            head: ResponseHead
            head, payload = await pool.request(
                worker.origin, method, path, body, _JSON_HEADERS if body else b"", timeout
            )
    except TimeoutError:
        return CallResult(worker, None, b"", f"no answer within {timeout:g}s")
    except UpstreamError as exc:
        return CallResult(worker, None, b"", str(exc))
    return CallResult(worker, head.status, payload, None)


async def call_all(
    pool: UpstreamPool, workers: Sequence[Worker], method: str, path: str, body: bytes, timeout: float
) -> list[CallResult]:
    """The same call to every worker concurrently, results in the workers' order."""
    return list(await asyncio.gather(*(call(pool, w, method, path, body, timeout) for w in workers)))


def failures(results: Sequence[CallResult]) -> str:
    """`addr (reason), addr (reason)` for the results that failed."""
    return ", ".join(r.describe() for r in results if not r.ok)
