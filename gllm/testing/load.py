"""A bounded load driver for fault tests: a fixed number of mixed requests, each with its outcome recorded.

Requests alternate between streaming and non-streaming chat and text completions. A stream counts as a success
only when it is one well-formed SSE stream: `data:` events of JSON chunks with no error, ending with exactly one
`data: [DONE]`. Streams whose chunks carry more than one response id were continued by another engine (the
balancer's mid-stream failover), which the client can see that way. With `client_retries`, a failed request is
sent again as a simple client would (connection refused, 429/502/503/504, or a stream cut before any event).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRYABLE = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to send: how many requests, how many at once, how long the answers are."""

    total: int
    concurrency: int = 8
    model: str = "sim-model"
    stream_max_tokens: int = 40
    plain_max_tokens: int = 8
    client_retries: int = 0
    retry_delay: float = 0.2
    timeout: float = 60.0
    request_id_prefix: str = "load"


@dataclass(slots=True)
class Outcome:
    """What happened to one request."""

    index: int
    request_id: str
    route: str
    stream: bool
    ok: bool = False
    status: int | None = None
    error: str | None = None
    attempts: int = 0
    ids: tuple[str, ...] = ()
    events: int = 0
    text: str = ""
    pieces: int = 0  # content chunks received (tokens, on the simulator)
    started: float = 0.0  # monotonic time the last attempt was sent
    finished: float = 0.0
    retry_causes: list[str] = field(default_factory=list)  # why each earlier attempt was retried

    @property
    def failed_over(self) -> bool:
        """True when the stream's chunks came from more than one response (continued elsewhere)."""
        return len(self.ids) > 1


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """The verdict on one SSE body."""

    ok: bool
    error: str | None
    ids: tuple[str, ...]
    events: int
    text: str
    pieces: int = 0  # chunks with non-empty content (one token each on vLLM and the simulator)


def check_stream(body: bytes) -> StreamCheck:
    """Check that `body` is one well-formed OpenAI SSE stream ending in `data: [DONE]`."""
    ids: list[str] = []
    pieces: list[str] = []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return StreamCheck(False, f"not UTF-8: {exc}", (), 0, "")
    blocks = text.replace("\r\n", "\n").split("\n\n")
    if blocks[-1] != "":
        return StreamCheck(False, f"stream ends inside an event: {blocks[-1][-80:]!r}", (), 0, "")
    events = [b for b in blocks[:-1] if b.strip()]
    for position, event in enumerate(events):
        lines = [line for line in event.split("\n") if not line.startswith(":")]
        if len(lines) != 1 or not lines[0].startswith("data: "):
            return StreamCheck(False, f"event {position} is not one data line: {event[:120]!r}", (), 0, "")
        data = lines[0][6:]
        if data == "[DONE]":
            if position != len(events) - 1:
                return StreamCheck(False, f"[DONE] at event {position} of {len(events)}", (), 0, "")
            text = "".join(pieces)
            return StreamCheck(
                True, None, tuple(dict.fromkeys(ids)), len(events), text, sum(map(bool, pieces))
            )
        try:
            chunk = json.loads(data)
        except ValueError:
            return StreamCheck(False, f"event {position} is not JSON: {data[:120]!r}", (), 0, "")
        if not isinstance(chunk, dict) or "error" in chunk or not isinstance(chunk.get("choices"), list):
            return StreamCheck(False, f"event {position} is not a chunk: {data[:200]!r}", (), 0, "")
        if isinstance(chunk.get("id"), str):
            ids.append(chunk["id"])
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            piece = delta.get("content") if "delta" in choice else choice.get("text")
            if isinstance(piece, str):
                pieces.append(piece)
    return StreamCheck(
        False, "no data: [DONE] at the end", tuple(dict.fromkeys(ids)), len(events), "".join(pieces)
    )


def _request(spec: LoadSpec, index: int) -> tuple[str, bool, dict[str, Any]]:
    """Route, stream flag and body of request `index`: chat stream, text, text stream, chat, repeated."""
    kind = index % 4
    stream = kind in (0, 2)
    chat = kind in (0, 3)
    prompt = f"Request {index}: tell me about fault tolerance."
    body: dict[str, Any] = {
        "model": spec.model,
        "max_tokens": spec.stream_max_tokens if stream else spec.plain_max_tokens,
        "stream": stream,
    }
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return ("/v1/chat/completions" if chat else "/v1/completions"), stream, body


@dataclass
class LoadReport:
    """Every outcome of a finished load, and the figures the suite reports."""

    outcomes: list[Outcome]
    elapsed: float
    failures: list[Outcome] = field(init=False)

    def __post_init__(self) -> None:
        self.failures = [o for o in self.outcomes if not o.ok]

    def figures(self) -> dict[str, Any]:
        """sent, succeeded, failed, and what the client saw of retries and failovers."""
        streams = [o for o in self.outcomes if o.stream]
        return {
            "sent": len(self.outcomes),
            "succeeded": sum(o.ok for o in self.outcomes),
            "failed": len(self.failures),
            "streams": len(streams),
            "failed_streams": sum(not o.ok for o in streams),
            "failed_non_streaming": sum(not o.ok for o in self.outcomes if not o.stream),
            "streams_continued": sum(o.failed_over for o in streams),
            "client_retries": sum(max(0, o.attempts - 1) for o in self.outcomes),
            "load_seconds": round(self.elapsed, 2),
        }

    def describe_failures(self, limit: int = 10) -> str:
        """The first failures, one per line, for assertion messages."""
        return "\n".join(
            f"#{o.index} {o.route} stream={o.stream} status={o.status} attempts={o.attempts}: {o.error}"
            for o in self.failures[:limit]
        )


class LoadDriver:
    """Sends `spec.total` requests to `base_url` from a background thread, `spec.concurrency` at a time."""

    def __init__(self, base_url: str, spec: LoadSpec) -> None:
        self.base_url = base_url
        self.spec = spec
        self.outcomes: list[Outcome] = []
        self.completed = 0
        self._next = 0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._elapsed = 0.0

    def start(self) -> LoadDriver:
        """Begin sending."""
        self._thread = threading.Thread(target=self._main, name="gllm-load", daemon=True)
        self._thread.start()
        return self

    def wait_completed(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` requests have finished (whatever their outcome)."""
        deadline = time.monotonic() + timeout
        while self.completed < count:
            if self._thread is not None and not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.completed}/{count} requests finished within {timeout:g}s")
            time.sleep(0.02)

    def join(self, timeout: float = 120.0) -> LoadReport:
        """Wait for the last request; the report."""
        assert self._thread is not None, "start() first"
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"load still running after {timeout:g}s ({self.completed} finished)")
        if self._error is not None:
            raise self._error
        return LoadReport(self.outcomes, self._elapsed)

    def _main(self) -> None:
        started = time.monotonic()
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # surfaced by join()
            self._error = exc
        self._elapsed = time.monotonic() - started

    async def _run(self) -> None:
        spec = self.spec
        limits = httpx.Limits(max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency)
        timeout = httpx.Timeout(spec.timeout, connect=5.0)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=timeout) as client:
            await asyncio.gather(*(self._lane(client) for _ in range(spec.concurrency)))
        self.outcomes.sort(key=lambda o: o.index)

    async def _lane(self, client: httpx.AsyncClient) -> None:
        while self._next < self.spec.total:
            index = self._next
            self._next += 1
            outcome = await self._one(client, index)
            self.outcomes.append(outcome)
            self.completed += 1

    async def _one(self, client: httpx.AsyncClient, index: int) -> Outcome:
        route, stream, body = _request(self.spec, index)
        request_id = f"{self.spec.request_id_prefix}-{index}"
        outcome = Outcome(index, request_id, route, stream)
        for attempt in range(1, self.spec.client_retries + 2):
            outcome.attempts = attempt
            outcome.started = time.monotonic()
            retry = await self._attempt(client, outcome, body)
            if outcome.ok or not retry or attempt > self.spec.client_retries:
                break
            outcome.retry_causes.append(self._cause(outcome))
            await asyncio.sleep(self.spec.retry_delay)
        outcome.finished = time.monotonic()
        return outcome

    @staticmethod
    def _cause(outcome: Outcome) -> str:
        """A short name for why an attempt failed: the status and error code, or the exception type."""
        if outcome.status is None or outcome.status == 200:
            return (outcome.error or "error").split(":", 1)[0]
        try:
            code = json.loads(outcome.error or "")["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = ""
        return f"{outcome.status} {code}".strip()

    async def _attempt(self, client: httpx.AsyncClient, outcome: Outcome, body: dict[str, Any]) -> bool:
        """Send once and fill in `outcome`; True when a retrying client would try again."""
        outcome.error, outcome.status = None, None
        received = b""
        try:
            headers = {"x-request-id": outcome.request_id}
            async with client.stream("POST", outcome.route, json=body, headers=headers) as response:
                outcome.status = response.status_code
                async for data in response.aiter_bytes():
                    received += data
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            return not received or outcome.stream  # a cut stream is re-sent whole by the client
        if outcome.status != 200:
            outcome.error = received[:300].decode("utf-8", "replace")
            return outcome.status in RETRYABLE
        if outcome.stream:
            verdict = check_stream(received)
            outcome.ok, outcome.error = verdict.ok, verdict.error
            outcome.ids, outcome.events, outcome.text = verdict.ids, verdict.events, verdict.text
            outcome.pieces = verdict.pieces
            return not verdict.ok
        try:
            answer = json.loads(received)
            choice = answer["choices"][0]
            outcome.text = choice["message"]["content"] if "message" in choice else choice["text"]
            outcome.ids = (answer["id"],)
            outcome.ok = isinstance(outcome.text, str) and bool(outcome.text)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            outcome.error = f"malformed answer ({exc!r}): {received[:200]!r}"
        return False
