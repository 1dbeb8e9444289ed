"""Per-request records: the request id, what happened to the request, and the optional access log line."""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import orjson

from gllm.balancer.sse import SseRelay

access_log = logging.getLogger("gllm.access")

_MAX_ID = 128


def _valid_id(raw: bytes) -> bool:
    return 0 < len(raw) <= _MAX_ID and raw.isascii() and all(33 <= c <= 126 for c in raw)


class RequestIds:
    """Request ids: the client's `X-Request-Id` when it is sane, else `<process prefix>-<counter>`."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex().encode()
        self._counter = itertools.count(1)

    def take(self, given: bytes | None) -> tuple[bytes, bool]:
        """Return the id and whether it was generated here (then it must be sent to the worker)."""
        if given is not None and _valid_id(given):
            return given, False
        return b"%s-%d" % (self._prefix, next(self._counter)), True


class RequestRecord:
    """What happened to one client request; filled in by the dispatcher and the proxy."""

    __slots__ = (
        "body",
        "error",
        "failovers",
        "id",
        "path",
        "relay",
        "retries",
        "started",
        "status",
        "ttfb",
        "upstream_header",
        "worker",
    )

    def __init__(self, request_id: bytes, generated: bool, path: str) -> None:
        self.id = request_id
        # A client's own X-Request-Id is forwarded with its headers; one made here is added to them.
        self.upstream_header = b"x-request-id: %s\r\n" % request_id if generated else b""
        self.path = path
        self.started = time.perf_counter()
        self.worker: str | None = None
        self.status = 0
        self.ttfb: float | None = None  # seconds to the worker's response head
        self.retries = 0
        self.failovers = 0
        self.body: bytes | None = None  # a buffered answer, kept by reference for the access log's usage
        self.relay: SseRelay | None = None  # a tracked stream's events, for the same reason
        self.error: str | None = None  # why the balancer answered with an error of its own

    def first_byte(self, status: int) -> None:
        """The worker's response head arrived."""
        self.status = status
        self.ttfb = time.perf_counter() - self.started


def usage_of(body: bytes | None) -> dict[str, Any] | None:
    """The `usage` object of a JSON answer or of the last SSE event that carries one."""
    if not body:
        return None
    candidates = (
        [body]
        if body[:1] == b"{"
        else [line[5:].strip() for line in body.splitlines() if line[:5] == b"data:"]
    )
    for raw in reversed(candidates):
        if b'"usage"' not in raw:
            continue
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        usage = payload.get("usage") if isinstance(payload, dict) else None
        if isinstance(usage, dict):
            return usage
    return None


def log_access(record: RequestRecord, policy: str) -> None:
    """One access-log line (readable text or JSON, by the logging setup), with tokens when the answer says."""
    elapsed = time.perf_counter() - record.started
    usage = usage_of(record.body if record.relay is None else record.relay.text()) or {}
    access_log.info(
        "%s %s -> %d via %s in %.1f ms (ttfb %s ms, retries %d, failovers %d, tokens %s/%s)",
        record.id.decode(),
        record.path,
        record.status,
        record.worker or "-",
        elapsed * 1000,
        f"{record.ttfb * 1000:.1f}" if record.ttfb is not None else "-",
        record.retries,
        record.failovers,
        usage.get("prompt_tokens", "-"),
        usage.get("completion_tokens", "-"),
        extra={
            "request_id": record.id.decode(),
            "worker": record.worker,
            "policy": policy,
            "status": record.status,
            "path": record.path,
            "latency_ms": round(elapsed * 1000, 3),
            "ttfb_ms": round(record.ttfb * 1000, 3) if record.ttfb is not None else None,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
        },
    )
