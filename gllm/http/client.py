"""One keep-alive HTTP/1.1 connection to a worker, on asyncio protocols and httptools (pooled by pool.py).

Two ways to read a response: `read_body()` collects it (control plane, small JSON answers), and `relay()` hands
the raw body bytes, framing included, to a callback as they arrive, so the proxy can pass a stream to its client
with no re-encoding and no task per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httptools

from gllm.http.headers import Headers, get_header

if TYPE_CHECKING:
    from gllm.http.pool import UpstreamPool


class UpstreamError(Exception):
    """A worker could not be talked to."""


class ConnectError(UpstreamError):
    """No connection could be made: no byte of the request reached the worker."""


class UpstreamTimeout(UpstreamError):
    """The worker did not answer within the time allowed."""


class UpstreamClosed(UpstreamError):
    """The worker closed the connection before the response was complete."""

    def __init__(self, message: str, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started


class Origin:
    """Scheme, host and port of a worker, parsed once."""

    __slots__ = ("host", "host_header", "key", "port", "tls", "url")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.url = url
        self.key = f"{parts.scheme}://{self.host}:{self.port}"
        self.host_header = (parts.netloc.rsplit("@", 1)[-1]).encode("idna")


class ResponseHead:
    """Status and headers of an upstream response, and how its body is framed."""

    __slots__ = ("chunked", "content_length", "headers", "keep_alive", "status")

    def __init__(self, status: int, headers: Headers, keep_alive: bool) -> None:
        self.status = status
        self.headers = headers
        self.keep_alive = keep_alive
        te = get_header(headers, b"transfer-encoding")
        self.chunked = te is not None and b"chunked" in te.lower()
        cl = get_header(headers, b"content-length")
        self.content_length = (
            int(cl) if cl is not None and cl.strip().isdigit() and not self.chunked else None
        )

    @property
    def close_delimited(self) -> bool:
        """True when the body ends only when the connection closes."""
        return not self.chunked and self.content_length is None and self.status not in (204, 304)


class _ParserCallbacks:
    """httptools callbacks that see headers and the end of the message, not the body."""

    __slots__ = ("conn",)

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn

    def on_header(self, name: bytes, value: bytes) -> None:
        self.conn.head_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        conn = self.conn
        conn.head_complete = True
        # Read now: httptools resets these once the message is complete.
        conn.head_status = conn.parser.get_status_code()
        conn.head_keep_alive = conn.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.conn.message_complete = True


class _DecodingCallbacks(_ParserCallbacks):
    """Also hands over the body with its transfer framing removed."""

    __slots__ = ()

    def on_body(self, body: bytes) -> None:
        self.conn.decoded.append(body)


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a worker; carries one request at a time."""

    def __init__(self, pool: UpstreamPool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.head_headers: Headers = []
        self.head_complete = False
        self.head_status = 0
        self.head_keep_alive = False
        self.message_complete = False
        self.parser: Any = None
        self._head_buf = bytearray()
        self._received = 0
        self._body: list[bytes] = []
        self._sink: Callable[[bytes], None] | None = None
        self._head: asyncio.Future[ResponseHead] | None = None
        self._done: asyncio.Future[None] | None = None
        self._decode = False
        self.decoded: list[bytes] = []  # body pieces decoded during the current read (decoding exchanges)
        self._timers: list[asyncio.TimerHandle] = []
        self._first_byte_timer: asyncio.TimerHandle | None = None
        self._idle_timeout = 0.0
        self._last_data = 0.0

    # -- asyncio.Protocol -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # bytes with no request outstanding: the connection is unusable
            self.abort()
            return
        if self._first_byte_timer is not None:
            self._first_byte_timer.cancel()
            self._first_byte_timer = None
        if self._idle_timeout:
            self._last_data = asyncio.get_running_loop().time()
        self._received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamClosed(f"malformed response from worker: {exc}", self.head_complete))
            self.abort()
            return
        if self._head is not None and not self._head.done():
            if not self.head_complete:
                self._head_buf += data
                return
            self._head_buf += data
            end = self._head_buf.find(b"\r\n\r\n") + 4
            data = bytes(self._head_buf[end:])
            self._head_buf = bytearray()
            head = ResponseHead(self.head_status, self.head_headers, self.head_keep_alive)
            self._head.set_result(head)
        if self._decode:
            # Every chunk decoded from this read goes on in one piece: one write to the client per read.
            decoded = self.decoded
            data = decoded[0] if len(decoded) == 1 else b"".join(decoded)
            decoded.clear()
        if data:
            if self._sink is not None:
                self._sink(data)
            else:
                self._body.append(data)
        if self.message_complete:
            self._complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.forget(self)
        if self._done is not None and not self._done.done():
            if self.head_complete and self._head is not None and self._head.done():
                head = self._head.result()
                if head.close_delimited:  # EOF is how this body ends
                    self._complete()
                    return
            self._fail(UpstreamClosed("worker closed the connection", self._received > 0))

    def pause_writing(self) -> None:  # the request body is small; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # -- one exchange -----------------------------------------------------------------------------------------
    def send(
        self,
        data: bytes,
        timeout: float | None = None,
        *,
        decode: bool = False,
        first_byte_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        """Write one whole request and get ready to read its response.

        `timeout` bounds the whole exchange, `first_byte_timeout` the wait for the worker's first byte and
        `idle_timeout` any silence while the response is coming; with `decode` the body is handed over without
        its transfer framing.
        """
        loop = asyncio.get_running_loop()
        self._decode = decode
        self.decoded.clear()
        self.parser = httptools.HttpResponseParser((_DecodingCallbacks if decode else _ParserCallbacks)(self))
        self.head_headers = []
        self.head_complete = self.message_complete = False
        self._head_buf = bytearray()
        self._received = 0
        self._body = []
        self._sink = None
        self._head = loop.create_future()
        self._done = loop.create_future()
        if timeout is not None:
            self._timers.append(
                loop.call_later(timeout, self._time_out, f"worker did not finish within {timeout:g}s")
            )
        if first_byte_timeout is not None:
            self._first_byte_timer = loop.call_later(
                first_byte_timeout, self._time_out, f"worker sent nothing within {first_byte_timeout:g}s"
            )
        self._idle_timeout = idle_timeout or 0.0
        if idle_timeout:
            self._last_data = loop.time()
            self._timers.append(loop.call_later(idle_timeout, self._check_idle))
        assert self.transport is not None
        self.transport.write(data)

    @property
    def decoding(self) -> bool:
        """True when the current exchange hands over the body without its transfer framing."""
        return self._decode

    async def read_head(self) -> ResponseHead:
        """Wait for the status line and headers."""
        assert self._head is not None
        return await self._head

    async def read_body(self) -> bytes:
        """Wait for the whole body and return it as sent (framing included when chunked)."""
        assert self._done is not None
        await self._done
        return self._body[0] if len(self._body) == 1 else b"".join(self._body)

    def relay(self, sink: Callable[[bytes], None]) -> asyncio.Future[None]:
        """Pass body bytes to `sink` as they arrive (those already received first); return the end."""
        assert self._done is not None
        if self._body:
            sink(b"".join(self._body))
            self._body = []
        self._sink = sink
        return self._done

    def pause_reading(self) -> None:
        """Stop reading from the worker (the client is slower than the worker)."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the worker again."""
        if self.transport is not None:
            self.transport.resume_reading()

    def _complete(self) -> None:
        self._cancel_timer()
        self.parser = None
        self._sink = None
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)

    def _fail(self, exc: UpstreamError) -> None:
        self._cancel_timer()
        self.parser = None
        self._sink = None
        for fut in (self._head, self._done):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: only one of the two is awaited on most paths

    def _time_out(self, message: str) -> None:
        self._fail(UpstreamTimeout(message))
        self.abort()

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        silent = loop.time() - self._last_data
        if silent >= self._idle_timeout:
            self._time_out(f"worker sent nothing for {self._idle_timeout:g}s")
        else:
            self._timers.append(loop.call_later(self._idle_timeout - silent, self._check_idle))

    def _cancel_timer(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._first_byte_timer is not None:
            self._first_byte_timer.cancel()
            self._first_byte_timer = None

    @property
    def reusable(self) -> bool:
        """True when the last exchange ended cleanly and the worker keeps the connection open."""
        if self.transport is None or self._done is None or not self._done.done() or self._done.exception():
            return False
        assert self._head is not None
        return self._head.result().keep_alive

    def abort(self) -> None:
        """Drop the connection at once (the worker sees the request cancelled)."""
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
