"""Forward one request to one worker and relay its answer: buffered when small, streamed as it arrives."""

from __future__ import annotations

from gllm.balancer.registry import Worker
from gllm.http.client import UpstreamClosed, UpstreamConnection, UpstreamError, UpstreamPool, build_request
from gllm.http.headers import end_to_end, status_line
from gllm.http.server import HttpRequest, ResponseWriter

# A response with a Content-Length up to this size is collected and sent in one write (one syscall, and nothing
# reaches the client before the worker has answered in full); longer or chunked bodies are relayed as they come.
BUFFER_LIMIT = 1024 * 1024

_REQUEST_DROP = (b"host", b"content-length", b"expect")


class Proxy:
    """Sends a client's request to a chosen worker and passes the answer back unchanged."""

    def __init__(self, pool: UpstreamPool, request_timeout: float | None) -> None:
        self._pool = pool
        self._timeout = request_timeout

    async def forward(self, worker: Worker, request: HttpRequest, writer: ResponseWriter, path: str) -> None:
        """Relay `request` to `worker` at `path`.

        Raises ConnectError when the worker cannot be reached (nothing was sent: the caller may try another
        worker), UpstreamTimeout or UpstreamClosed when it fails before the client got a byte; a failure after
        that closes the client's connection, which is how an HTTP client learns a stream broke.
        """
        version = b"1.1" if writer.http11 else b"1.0"  # an HTTP/1.0 client must not get a chunked answer
        data = build_request(
            worker.origin,
            request.method,
            path,
            end_to_end(request.headers, _REQUEST_DROP),
            request.body,
            version,
        )
        worker.in_flight += 1
        worker.requests_total += 1
        conn: UpstreamConnection | None = None
        try:
            conn = await self._exchange(worker, data)
            head = await conn.read_head()
            framing = b"transfer-encoding: chunked\r\n" if head.chunked else b""
            close = head.close_delimited
            if close:
                writer.close_after = True
            client_head = (
                status_line(head.status)
                + end_to_end(head.headers)
                + framing
                + writer.connection_header()
                + b"\r\n"
            )
            if head.content_length is not None and head.content_length <= BUFFER_LIMIT:
                body = await conn.read_body()
                writer.write(client_head + body)
            else:
                writer.write(client_head)
                writer.on_backpressure(conn.pause_reading, conn.resume_reading)
                try:
                    await conn.relay(writer.write)
                except UpstreamError:
                    writer.finish(close=True)  # the stream broke: the client sees the connection end early
                    raise
            self._pool.release(conn)
            conn = None
            writer.finish(close=close)
        finally:
            worker.in_flight -= 1
            if conn is not None:
                conn.abort()  # failed or cancelled (client gone): drop it so the engine stops generating

    async def _exchange(self, worker: Worker, data: bytes) -> UpstreamConnection:
        """Send the request; a pooled connection that turns out closed is replaced once by a fresh one."""
        conn = await self._pool.acquire(worker.origin)
        if not conn.reused:
            conn.send(data, self._timeout)
            return conn
        conn.send(data, self._timeout)
        try:
            await conn.read_head()
        except UpstreamClosed as exc:
            conn.abort()
            if exc.response_started:
                raise
            conn = await self._pool.acquire(worker.origin, fresh=True)
            conn.send(data, self._timeout)
        return conn
