"""Connection handling of the balancer's HTTP server: idle keep-alive connections are closed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gllm.http.server import HttpRequest, HttpServer, ResponseWriter, ServerLimits
from gllm.testing.loop_thread import LoopThread

pytestmark = pytest.mark.integration


async def _hello(request: HttpRequest, writer: ResponseWriter) -> None:
    writer.send(200, b"hello", b"text/plain")


@pytest.fixture
def server_port() -> Iterator[int]:
    """A server with a short keep-alive timeout on a free port."""
    loop = LoopThread()
    server = HttpServer(_hello, ServerLimits(idle_timeout=0.4))
    try:
        yield loop.run(server.start("127.0.0.1", 0))
    finally:
        loop.run(server.close())
        loop.close()


class TestIdleConnections:
    """A keep-alive connection that stays silent is closed; a busy one is not."""

    def test_silent_connection_closed(self, server_port: int) -> None:
        """A connection that sends nothing is closed by the server within a generous deadline."""
        with socket.create_connection(("127.0.0.1", server_port), timeout=30) as sock:
            assert sock.recv(1) == b""  # blocks until the server closes (or the 30 s socket timeout fails it)

    def test_connection_serves_requests_then_closes_when_idle(self, server_port: int) -> None:
        """Requests are answered on the connection; after them, silence closes it."""
        with socket.create_connection(("127.0.0.1", server_port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            data = b""
            while b"hello" not in data:
                chunk = sock.recv(4096)
                assert chunk, "closed before answering"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
            rest = b""
            while chunk := sock.recv(4096):
                rest += chunk
            assert rest == b""


class TestLimits:
    """Oversized request heads are refused with a status, not held in memory."""

    @pytest.mark.parametrize(
        ("request_bytes", "status"),
        [
            (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n", b"431"),
            (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", b"414"),
        ],
    )
    def test_oversized_head_refused(self, server_port: int, request_bytes: bytes, status: bytes) -> None:
        """A huge header or URL gets its status and a closed connection."""
        with socket.create_connection(("127.0.0.1", server_port), timeout=30) as sock:
            try:
                sock.sendall(request_bytes)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close before the whole head is sent
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass
            assert data.startswith(b"HTTP/1.1 " + status), data[:100]
