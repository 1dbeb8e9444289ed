"""Forward one request to one worker and relay its answer: buffered when small, streamed as it arrives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gllm.balancer.registry import Worker
from gllm.balancer.request_log import RequestRecord
from gllm.balancer.sse import SseRelay
from gllm.http.client import (
    ConnectError,
    ResponseHead,
    UpstreamClosed,
    UpstreamConnection,
    UpstreamError,
    UpstreamTimeout,
)
from gllm.http.headers import end_to_end, status_line
from gllm.http.pool import UpstreamPool
from gllm.http.server import HttpRequest, ResponseWriter
from gllm.http.wire import build_request, decode_chunked

# A response with a Content-Length up to this size is collected and sent in one write (one syscall, and nothing
# reaches the client before the worker has answered in full); longer or chunked bodies are relayed as they come.
BUFFER_LIMIT = 1024 * 1024

# Worker answers that mean "not me, not now": retried on another worker when the client has seen nothing yet.
RETRYABLE_STATUS = frozenset({502, 503})

_REQUEST_DROP = (b"host", b"content-length", b"expect")
_CHUNKED = b"transfer-encoding: chunked\r\n"


class WorkerFailed(Exception):
    """The worker failed before the client received anything; another worker may be tried."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        timed_out: bool = False,
        answer: tuple[ResponseHead, bytes] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.timed_out = timed_out
        self.answer = (
            answer  # the worker's own refusal (head, decoded body), passed on when no worker can help
        )


class StreamBroken(Exception):
    """The worker failed after the client received the response head; `relay` holds what was forwarded."""

    def __init__(self, message: str, relay: SseRelay | None) -> None:
        super().__init__(message)
        self.relay = relay


@dataclass(frozen=True, slots=True)
class Exchange:
    """The parts of one client request that stay the same across every worker it is sent to."""

    request: HttpRequest
    writer: ResponseWriter
    path: str
    stream: bool
    record: RequestRecord


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Timeouts of one exchange with a worker, and whether streams are kept continuable."""

    request_timeout: float | None = None
    first_byte_timeout: float | None = 120.0
    idle_timeout: float | None = 120.0
    failover: bool = True


class Proxy:
    """Sends a client's request to a chosen worker and passes the answer back unchanged."""

    def __init__(self, pool: UpstreamPool, settings: ProxySettings) -> None:
        self._pool = pool
        self._settings = settings

    async def forward(
        self, worker: Worker, exchange: Exchange, body: bytes, continuing: SseRelay | None = None
    ) -> None:
        """Relay `body` to `worker` at the exchange's path and the worker's answer to the client.

        Raises WorkerFailed when the worker fails before the client got a byte, StreamBroken after. With
        `continuing`, the worker's events are appended to a stream another worker began.
        """
        request, writer, path, record = exchange.request, exchange.writer, exchange.path, exchange.record
        tracked = continuing is not None or (exchange.stream and self._settings.failover and writer.http11)
        version = b"1.1" if writer.http11 else b"1.0"  # an HTTP/1.0 client must not get a chunked answer
        headers = end_to_end(request.headers, _REQUEST_DROP) + record.upstream_header
        data = build_request(worker.origin, request.method, path, headers, body, version)
        record.worker = worker.address
        worker.in_flight += 1
        worker.requests_total += 1
        worker.breaker.on_start()
        conn: UpstreamConnection | None = None
        success = False
        cancelled = False
        try:
            conn = await self._exchange(worker, data, tracked)
            head = await self._head(conn, worker)
            record.first_byte(head.status)
            if continuing is not None and head.status != 200:
                raise WorkerFailed(f"worker refused the continuation with {head.status}", status=head.status)
            if continuing is not None:
                await self._relay_events(conn, continuing, writer)
            elif head.content_length is not None and head.content_length <= BUFFER_LIMIT:
                record.body = await self._send_buffered(conn, head, writer)
            elif tracked:
                writer.write(self._client_head(head, writer, _CHUNKED))
                record.relay = SseRelay(writer.write)
                await self._relay_events(conn, record.relay, writer)
            else:
                await self._relay_raw(conn, head, writer)
            self._pool.release(conn)
            conn = None
            success = head.status < 500
            if continuing is None:
                writer.finish(close=head.close_delimited)
        except asyncio.CancelledError:
            cancelled = True  # the client went away: says nothing about the worker
            raise
        finally:
            worker.in_flight -= 1
            if cancelled:
                worker.breaker.release()
            else:
                worker.breaker.record(success)
            if conn is not None:
                conn.abort()  # failed or cancelled (client gone): drop it so the engine stops generating

    async def _exchange(self, worker: Worker, data: bytes, decode: bool) -> UpstreamConnection:
        """Send the request; a pooled connection that turns out closed is replaced once by a fresh one."""
        settings = self._settings
        for fresh in (False, True):
            try:
                conn = await self._pool.acquire(worker.origin, fresh=fresh)
            except ConnectError as exc:
                raise WorkerFailed(str(exc)) from exc
            conn.send(
                data,
                settings.request_timeout,
                decode=decode,
                first_byte_timeout=settings.first_byte_timeout,
                idle_timeout=settings.idle_timeout,
            )
            if not conn.reused:
                return conn
            try:
                await conn.read_head()
                return conn
            except UpstreamClosed as exc:
                conn.abort()
                if exc.response_started:
                    raise WorkerFailed(f"worker failed: {exc}") from exc
            except UpstreamTimeout as exc:
                conn.abort()
                raise WorkerFailed(str(exc), timed_out=True) from exc
        raise WorkerFailed("worker closed two connections in a row")

    async def _head(self, conn: UpstreamConnection, worker: Worker) -> ResponseHead:
        """Wait for the answer's head; a retryable status is read out and raised as WorkerFailed."""
        try:
            head = await conn.read_head()
            if head.status in RETRYABLE_STATUS:
                body = await conn.read_body()
                if head.chunked and not conn.decoding:
                    body = decode_chunked(body)
                text = body[:300].decode("utf-8", "replace").strip()
                raise WorkerFailed(f"worker answered {head.status}: {text}", head.status, answer=(head, body))
        except UpstreamTimeout as exc:
            raise WorkerFailed(str(exc), timed_out=True) from exc
        except UpstreamError as exc:
            raise WorkerFailed(f"worker failed: {exc}") from exc
        return head

    def send_answer(self, writer: ResponseWriter, answer: tuple[ResponseHead, bytes]) -> None:
        """Send a worker's whole answer that was held back (to retry elsewhere first)."""
        head, body = answer
        framing = b"content-length: %d\r\n" % len(body)
        headers = end_to_end(head.headers, (b"content-length",))
        writer.write(
            status_line(head.status) + headers + framing + writer.connection_header() + b"\r\n" + body
        )
        writer.finish()

    def _client_head(self, head: ResponseHead, writer: ResponseWriter, framing: bytes) -> bytes:
        if head.close_delimited and not framing:
            writer.close_after = True
        return (
            status_line(head.status)
            + end_to_end(head.headers)
            + framing
            + writer.connection_header()
            + b"\r\n"
        )

    async def _send_buffered(
        self, conn: UpstreamConnection, head: ResponseHead, writer: ResponseWriter
    ) -> bytes:
        try:
            body = await conn.read_body()
        except UpstreamTimeout as exc:
            raise WorkerFailed(str(exc), timed_out=True) from exc
        except UpstreamError as exc:
            raise WorkerFailed(f"worker failed: {exc}") from exc
        writer.write(self._client_head(head, writer, b"") + body)
        return body

    async def _relay_events(self, conn: UpstreamConnection, relay: SseRelay, writer: ResponseWriter) -> None:
        writer.on_backpressure(conn.pause_reading, conn.resume_reading)
        try:
            await conn.relay(relay.feed)
        except UpstreamError as exc:
            relay.drop_partial()
            raise StreamBroken(f"stream broke: {exc}", relay) from exc
        relay.finish()

    async def _relay_raw(self, conn: UpstreamConnection, head: ResponseHead, writer: ResponseWriter) -> None:
        writer.write(self._client_head(head, writer, _CHUNKED if head.chunked else b""))
        writer.on_backpressure(conn.pause_reading, conn.resume_reading)
        try:
            await conn.relay(writer.write)
        except UpstreamError as exc:
            raise StreamBroken(f"stream broke: {exc}", None) from exc
