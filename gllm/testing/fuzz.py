"""Helpers of the balancer's fuzz tests: raw HTTP exchanges, the invariants every answer must keep, a target.

The target is a real balancer (in a thread) in front of two scripted workers that answer anything, so every
5xx a fuzz case sees comes from the balancer itself. Hypothesis strategies live in the tests; nothing here
imports hypothesis.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httptools
import httpx

from gllm.testing.balancer import BalancerThread
from gllm.testing.fault_servers import FrontServers, Scripted
from gllm.testing.net import wait_until

# The only server errors the balancer may answer on purpose: a worker unreachable, unavailable, or too slow.
DELIBERATE_5XX = frozenset({502, 503, 504})

# Text that would betray an unhandled exception leaking into a response.
LEAK_MARKERS = (b"Traceback (most recent call last)", b'File "/', b"Internal error in the balancer")


@dataclass
class RawAnswer:
    """What came back on a raw socket: the parsed response (if any), and whether the server closed."""

    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = False
    closed: bool = False
    timed_out: bool = False
    raw: bytes = b""


class _Collector:
    """httptools callbacks filling a RawAnswer."""

    def __init__(self, answer: RawAnswer) -> None:
        self.answer = answer
        self._body: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.answer.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.answer.body = b"".join(self._body)
        self.answer.complete = True


def raw_exchange(
    port: int, data: bytes, timeout: float = 5.0, wait_close: bool = True, half_close: bool = False
) -> RawAnswer:
    """Send `data` on a fresh connection; read one response, then wait for the close (always when the
    response says `connection: close`; for a kept-alive one only with `wait_close`).

    Never hangs: every read has `timeout`. A server that keeps waiting (say, for a body longer than what was
    sent) shows as `timed_out` with no status; with `half_close` the client shuts its sending side after the
    data, as a client that has nothing more to say, so such a server sees the end instead of waiting.
    """
    answer = RawAnswer()
    collector = _Collector(answer)
    parser = httptools.HttpResponseParser(collector)
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close on a malformed prefix before reading everything: read its answer
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                answer.timed_out = True
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                answer.timed_out = True
                break
            except ConnectionResetError:
                answer.closed = True
                break
            if not chunk:
                answer.closed = True
                break
            answer.raw += chunk
            if not answer.complete:
                try:
                    parser.feed_data(chunk)
                except httptools.HttpParserError:
                    break
                if answer.status is None and parser.get_status_code():
                    answer.status = parser.get_status_code()
            if answer.complete and not wait_close and answer.headers.get(b"connection") != b"close":
                break  # a kept-alive connection stays open: the answer is all there is to read
    if answer.status is None and answer.raw.startswith(b"HTTP/1."):
        answer.status = int(answer.raw[9:12])
    return answer


def problem(status: int | None, body: bytes) -> str | None:
    """Why an answer breaks the fuzz invariants (an undeliberate 5xx, a leaked traceback), or None."""
    if status is not None and status >= 500 and status not in DELIBERATE_5XX:
        return f"status {status}: {body[:300]!r}"
    for marker in LEAK_MARKERS:
        if marker in body:
            return f"leak {marker!r} in status {status} body: {body[:300]!r}"
    return None


class FuzzTarget:
    """A balancer with two scripted workers; `reset()` puts the registry back after control-route cases."""

    def __init__(self, **overrides: Any) -> None:
        self.fronts = FrontServers()
        self.workers: list[Scripted] = []
        self.balancer = BalancerThread(**overrides)
        self.client: httpx.Client | None = None

    def __enter__(self) -> FuzzTarget:
        try:
            self.workers = [self.fronts.add_scripted([]) for _ in range(2)]
            self.balancer.start()
            self.client = httpx.Client(base_url=self.balancer.url, timeout=30.0)
            self.reset()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def http(self) -> httpx.Client:
        """A client bound to the balancer."""
        assert self.client is not None
        return self.client

    @property
    def port(self) -> int:
        """The balancer's port."""
        return self.balancer.port

    def alive(self) -> None:
        """The balancer still answers (a fresh connection, so a closed one cannot hide a dead server)."""
        answer = raw_exchange(
            self.port, b"GET /workers HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n\r\n", 10.0
        )
        assert answer.status == 200, answer.raw[:300]

    def reset(self) -> None:
        """Exactly the two scripted workers registered again (control-route cases may have changed that)."""
        wanted = {w.url for w in self.workers}
        current = {w["address"] for w in self.http.get("/workers").json()}
        for address in current - wanted:
            self.http.post("/remove_worker", json={"address": address})
        for address in wanted - current:
            assert self.http.post("/add_worker", json={"address": address}).status_code == 200

    def in_flight(self) -> int:
        """Sum of in-flight counts over the registered workers."""
        return sum(int(w["in_flight"]) for w in self.http.get("/workers").json())

    def settled(self, timeout: float = 30.0) -> None:
        """Wait until no request is open anywhere: every in-flight count zero, nothing queued or active."""
        app = self.balancer.app
        assert app is not None

        def idle() -> bool:
            return self.in_flight() == 0 and app.dispatcher.active == 0 and len(app.admission) == 0

        wait_until(idle, timeout=timeout, interval=0.05, what="no open request")

    def close(self) -> None:
        """Stop everything."""
        if self.client is not None:
            self.client.close()
        self.balancer.stop()
        self.fronts.close()
