"""A small, fast HTTP/1.1 server on asyncio protocols and httptools.

It exists because the balancer's hot path must cost far less CPU than a general web framework: one parser in C,
one task per request, no middleware chain. It does keep-alive, pipelining (answered in order), Expect:
100-continue, a body size limit (413), write flow control, and cancels a request's handler when its client
disconnects so that upstream work stops too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import httptools

from gllm.http.headers import Headers, get_header, status_line

log = logging.getLogger("gllm.http")


class HttpRequest:
    """One parsed request; the body is complete before the handler runs."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "version")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        version: str,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def header(self, name: bytes) -> bytes | None:
        """Return the first value of a (lower-case) header name."""
        return get_header(self.headers, name)


class ResponseWriter:
    """Writes the response to one request, either whole (`send`) or in pieces (`write` then `finish`)."""

    __slots__ = ("_conn", "close_after", "extra_head", "finished", "http11", "started", "status")

    def __init__(self, conn: HttpConnection, keep_alive: bool, http11: bool) -> None:
        self._conn = conn
        self.http11 = http11
        self.close_after = not keep_alive
        self.started = False
        self.finished = False
        self.extra_head = b""  # header lines every response to this request carries (e.g. its request id)
        self.status = 0  # the status of an answer made with send() (relayed answers are the caller's to note)

    @property
    def disconnected(self) -> bool:
        """True once the client's connection is gone."""
        return self._conn.transport is None

    def connection_header(self) -> bytes:
        """The Connection header line this response must carry, after the request's own extra lines."""
        if self.close_after:
            return self.extra_head + b"connection: close\r\n"
        return self.extra_head if self.http11 else self.extra_head + b"connection: keep-alive\r\n"

    def write(self, data: bytes) -> None:
        """Send raw bytes (status line and headers included by the caller for the first write)."""
        self.started = True
        transport = self._conn.transport
        if transport is not None:
            transport.write(data)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Send a complete response with a Content-Length, then finish."""
        self.status = status
        extra = b"".join(b"%s: %s\r\n" % h for h in headers)
        self.write(
            b"%scontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n%s"
            % (status_line(status), content_type, len(body), extra, self.connection_header(), body)
        )
        self.finish()

    def finish(self, close: bool = False) -> None:
        """Mark the response complete; the connection then serves the next request or closes."""
        if self.finished:
            return
        self.finished = True
        self._conn.response_finished(close or self.close_after)

    def on_backpressure(self, pause: Callable[[], None] | None, resume: Callable[[], None] | None) -> None:
        """Call `pause` when the client's write buffer is full and `resume` when it has drained."""
        self._conn.pause_listener = pause
        self._conn.resume_listener = resume


Handler = Callable[[HttpRequest, ResponseWriter], Awaitable[None]]


class ServerLimits:
    """Per-connection limits of the server."""

    __slots__ = ("idle_timeout", "max_body_bytes", "max_header_bytes", "max_pipeline")

    def __init__(
        self,
        max_body_bytes: int = 32 * 1024 * 1024,
        max_pipeline: int = 64,
        idle_timeout: float = 75.0,
        max_header_bytes: int = 64 * 1024,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_pipeline = max_pipeline
        self.idle_timeout = idle_timeout  # a keep-alive connection silent this long is closed


def _error_body(message: str, type_: str, code: int) -> bytes:
    return b'{"error":{"message":"%s","type":"%s","code":%d}}' % (message.encode(), type_.encode(), code)


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests and runs the handler for each, one at a time."""

    def __init__(self, handler: Handler, limits: ServerLimits, connections: set[HttpConnection]) -> None:
        self._handler = handler
        self._limits = limits
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.last_active = self._loop.time()
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._header_bytes = 0
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._queue: deque[HttpRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        self._rejection: tuple[int, str] | None = None  # protocol error held until earlier answers are out
        self.pause_listener: Callable[[], None] | None = None
        self.resume_listener: Callable[[], None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # httptools raises this after the request is complete and its task started: that request is
            # answered as a plain one and the connection then closes (see on_message_complete).
            if self._task is None:
                self._reject(400, "Protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._reject(400, f"Malformed HTTP request: {exc.__class__.__name__}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._connections.discard(self)
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client is gone: stop the work done on its behalf

    def pause_writing(self) -> None:
        if self.pause_listener is not None:
            self.pause_listener()

    def resume_writing(self) -> None:
        if self.resume_listener is not None:
            self.resume_listener()

    # -- httptools callbacks ----------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._header_bytes = 0
        self._headers = []
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_header_bytes:
            self._too_large = True
            self._reject(414, "Request URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > self._limits.max_header_bytes:
            self._too_large = True
            self._reject(431, f"Request headers exceed {self._limits.max_header_bytes} bytes")
            return
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        length = get_header(self._headers, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self._limits.max_body_bytes:
            self._too_large = True
            self._reject(413, f"Request body exceeds {self._limits.max_body_bytes} bytes")
            return
        expect = get_header(self._headers, b"expect")
        if expect is not None and expect.lower() == b"100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_bytes:
            self._too_large = True
            self._reject(413, f"Request body exceeds {self._limits.max_body_bytes} bytes")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_large or self.transport is None:
            return
        parsed = httptools.parse_url(self._url)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = HttpRequest(
            self._parser.get_method().decode("ascii", "replace"),
            parsed.path.decode("utf-8", "replace"),
            parsed.query.decode("utf-8", "replace") if parsed.query else "",
            self._parser.get_http_version(),
            self._headers,
            body,
            # Upgrades are not supported: what follows an upgrade request is not HTTP, so close after it.
            self._parser.should_keep_alive() and not self._parser.should_upgrade(),
        )
        if self._task is None:
            self._start(request)
        else:
            self._queue.append(request)
            if len(self._queue) >= self._limits.max_pipeline:
                self.transport.pause_reading()  # bound memory: a client may not pipeline without limit

    # -- request lifecycle ------------------------------------------------------------------------------------
    def _start(self, request: HttpRequest) -> None:
        writer = ResponseWriter(self, request.keep_alive, request.version == "1.1")
        self._task = self._loop.create_task(self._run(request, writer))

    async def _run(self, request: HttpRequest, writer: ResponseWriter) -> None:
        try:
            await self._handler(request, writer)
        except asyncio.CancelledError:
            if self.transport is not None:  # cancelled for another reason than a disconnect
                self._abort()
            raise
        except Exception:
            log.exception("unhandled error while serving %s %s", request.method, request.path)
            if not writer.started:
                writer.send(500, _error_body("Internal error in the balancer", "internal_error", 500))
            else:
                self._abort()
        if not writer.finished:
            if writer.started:
                self._abort()  # a handler that began a response must end it; half a response is unusable
            else:
                writer.send(500, _error_body("No response was produced", "internal_error", 500))

    def response_finished(self, close: bool) -> None:
        """Called by the writer when its response is complete."""
        self._task = None
        self.pause_listener = self.resume_listener = None
        transport = self.transport
        if transport is None:
            return
        if close:
            transport.close()
            self.transport = None
            return
        if self._queue:
            if len(self._queue) == self._limits.max_pipeline and self._rejection is None:
                transport.resume_reading()
            self._start(self._queue.popleft())
        elif self._rejection is not None:
            self._reject(*self._rejection)

    def close_if_idle(self, since: float) -> None:
        """Close the connection when no request is open and nothing arrived after `since`."""
        if self._task is None and self.last_active < since and self.transport is not None:
            self.transport.close()
            self.transport = None

    def _reject(self, status: int, message: str) -> None:
        """Answer a protocol-level error and close the connection (after answering earlier requests)."""
        transport = self.transport
        if transport is None:
            return
        if self._task is not None:
            # Requests before the bad bytes are answered first, in order; then this error, then the close.
            self._rejection = (status, message)
            transport.pause_reading()
            return
        body = _error_body(message.replace('"', "'"), "invalid_request_error", status)
        transport.write(
            b"%scontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status_line(status), len(body), body)
        )
        transport.close()
        self.transport = None

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None


class HttpServer:
    """Listens on one address and serves every connection with one handler."""

    def __init__(self, handler: Handler, limits: ServerLimits | None = None) -> None:
        self._handler = handler
        self._limits = limits or ServerLimits()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.connections: set[HttpConnection] = set()

    async def start(self, host: str, port: int, **kwargs: Any) -> int:
        """Bind and start serving; return the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self._handler, self._limits, self.connections),
            host,
            port,
            backlog=4096,
            reuse_address=True,
            **kwargs,
        )
        self._sweeper = loop.create_task(self._sweep_idle())
        return int(self._server.sockets[0].getsockname()[1])

    async def _sweep_idle(self) -> None:
        """Close silent keep-alive connections now and then (cheaper than a timer per request)."""
        timeout = self._limits.idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(timeout / 2, 10.0))
            since = loop.time() - timeout
            for conn in list(self.connections):
                conn.close_if_idle(since)

    def stop_listening(self) -> None:
        """Stop accepting new connections (existing ones keep going)."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop listening and close every open connection."""
        self.stop_listening()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
