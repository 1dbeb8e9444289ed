"""The pool of keep-alive connections to every worker: connect timeouts, reuse, stale-connection retry."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from gllm.http.client import ConnectError, Origin, ResponseHead, UpstreamClosed, UpstreamConnection
from gllm.http.wire import build_request, decode_chunked


class UpstreamPool:
    """Keep-alive connections to every worker, with connect timeouts and stale-connection handling."""

    def __init__(self, connect_timeout: float = 5.0, max_idle_per_origin: int = 512) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self._idle: dict[str, deque[UpstreamConnection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def acquire(self, origin: Origin, fresh: bool = False) -> UpstreamConnection:
        """Return an idle connection to `origin` or open a new one (ConnectError when it cannot)."""
        idle = None if fresh else self._idle.get(origin.key)
        while idle:
            conn = idle.pop()  # most recently used: least likely to have been closed by the worker
            if conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                return conn
        return await self._connect(origin)

    async def _connect(self, origin: Origin) -> UpstreamConnection:
        tls: ssl.SSLContext | None = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await asyncio.get_running_loop().create_connection(
                    lambda: UpstreamConnection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError as exc:
            raise ConnectError(f"connect to {origin.url} timed out after {self.connect_timeout:g}s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {origin.url}: {exc.strerror or exc}") from exc
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after its exchange: kept when reusable, closed otherwise."""
        if not conn.reusable:
            conn.abort()
            return
        idle = self._idle.setdefault(conn.origin.key, deque())
        if len(idle) >= self.max_idle_per_origin:
            conn.abort()
            return
        idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """Drop a closed connection from the idle set."""
        idle = self._idle.get(conn.origin.key)
        if idle is not None:
            try:
                idle.remove(conn)
            except ValueError:
                pass

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for conn in list(idle):
                conn.abort()
        self._idle.clear()

    async def request(
        self,
        origin: Origin,
        method: str,
        path: str,
        body: bytes = b"",
        headers: bytes = b"",
        timeout: float | None = None,
    ) -> tuple[ResponseHead, bytes]:
        """Send one request and return the head and whole body (chunked bodies are decoded)."""
        data = build_request(origin, method, path, headers, body)
        for attempt in range(2):
            conn = await self.acquire(origin, fresh=attempt > 0)
            try:
                conn.send(data, timeout)
                head = await conn.read_head()
                raw = await conn.read_body()
            except UpstreamClosed as exc:
                conn.abort()
                if attempt == 0 and conn.reused and not exc.response_started:
                    continue  # a pooled connection the worker had already closed: try a fresh one
                raise
            except BaseException:
                conn.abort()
                raise
            self.release(conn)
            return head, decode_chunked(raw) if head.chunked else raw
        raise AssertionError("unreachable")
