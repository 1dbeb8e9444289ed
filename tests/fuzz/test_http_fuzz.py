"""Fuzz the balancer's HTTP layer on raw sockets: paths, headers, framing and garbage.

Malformed HTTP must get a 400 (or 413/414/431) and a closed connection, never a hang; anything that parses as
HTTP gets a sane answer. After every case the balancer answers a fresh connection, and at the end of the module
no request is left open.
"""

from __future__ import annotations

import socket
from urllib.parse import quote

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gllm.testing.fuzz import FuzzTarget, RawAnswer, problem, raw_exchange

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
REJECTIONS = frozenset({400, 413, 414, 431})
PATHS = [
    "/health",
    "/workers",
    "/models",
    "/v1/models",
    "/completions",
    "/v1/completions",
    "/v1/chat/completions",
    "/add_worker",
    "/load_model",
    "/metrics",
    "/stats",
]
BODY = b'{"prompt": "p", "model": "m"}'

# Path characters: safe ones, percent escapes (valid and not), traversal, unicode, raw high bytes.
segments = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@", max_size=12),
    st.text(max_size=8).map(lambda t: quote(t, safe="")),
    st.sampled_from(
        ["..", ".", "%", "%zz", "%00", "%2F", "%2e%2e", "v1", "v1/", "chat", "completions", "", "//"]
    ),
    st.binary(min_size=1, max_size=4).map(lambda b: b.decode("latin-1")),
)
paths = st.one_of(
    st.lists(segments, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    st.sampled_from(PATHS).flatmap(
        lambda p: st.sampled_from([p, p + "/", p + "?x=1", p + "#f", "/v1" + p, p.upper()])
    ),
    st.integers(1000, 80000).map(lambda n: "/v1/" + "a" * n),
    st.sampled_from(
        [
            "*",
            "http://127.0.0.1/health",
            "/stats?window=abc",
            "/stats?window=-5&step=0",
            "/stats?window=99999999999999999999",
        ]
    ),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "get", "CONNECT"]
)


def request(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """Bytes of one HTTP/1.1 request (headers exactly as given, then the body)."""
    lines = [b"%s %s HTTP/1.1" % (method.encode(), path.encode("latin-1", "replace"))]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def sane(target: FuzzTarget, answer: RawAnswer) -> None:
    """The answer breaks no invariant; a rejection closes the connection; the balancer is still up."""
    assert problem(answer.status, answer.body or answer.raw) is None, problem(answer.status, answer.raw)
    if answer.status in REJECTIONS and answer.headers.get(b"connection") == b"close":
        assert answer.closed, f"{answer.status} without closing the connection"
    target.alive()


@pytest.mark.integration
@pytest.mark.slow
class TestRequestLine:
    """Random methods and paths, with and without /v1, encoded, traversing, very long."""

    @settings(FUZZ, max_examples=500)
    @given(method=methods, path=paths)
    def test_paths(self, target: FuzzTarget, method: str, path: str) -> None:
        """Every well-framed request gets one complete answer (404/405/400/414 or a route's own)."""
        headers = [
            (b"host", b"fuzz"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(BODY)),
        ]
        answer = raw_exchange(
            target.port, request(method, path, headers, BODY), timeout=10.0, wait_close=False
        )
        assert answer.status is not None, f"no answer to {method} {path[:80]!r}: {answer.raw[:200]!r}"
        sane(target, answer)

    @settings(FUZZ, max_examples=300)
    @given(garbage=st.binary(min_size=1, max_size=300))
    def test_garbage_request_lines(self, target: FuzzTarget, garbage: bytes) -> None:
        """Bytes that are not a request line: 400 and a closed connection, quickly.

        Blank lines before a request line are allowed (RFC 9112 section 2.2), so a server may wait after them;
        the client half-closes, and then it must close too.
        """
        data = garbage.replace(b"\n", b" ") + b"\r\n\r\n"
        answer = raw_exchange(target.port, data, timeout=10.0, half_close=True)
        assert not answer.timed_out, f"hung on {garbage!r}"
        assert answer.closed
        sane(target, answer)
        if garbage.strip(b"\r\n\t "):
            assert answer.status == 400, f"{garbage!r} -> {answer.raw[:200]!r}"


pipelined = st.lists(
    st.sampled_from(
        [("GET", "/workers"), ("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/nope")]
    ),
    min_size=1,
    max_size=5,
)


class _Count:
    """Counts complete responses on one connection, with their statuses."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        self.statuses.append(self.parser.get_status_code())


def read_responses(sock: socket.socket, expected: int, timeout: float) -> tuple[list[int], bool]:
    """Read until `expected` responses arrived or the server closed; the statuses and whether it closed."""
    count = _Count()
    sock.settimeout(timeout)
    while len(count.statuses) < expected:
        chunk = sock.recv(65536)
        if not chunk:
            return count.statuses, True
        count.parser.feed_data(chunk)
    return count.statuses, False


@pytest.mark.integration
@pytest.mark.slow
class TestPipelining:
    """Several requests sent at once are answered in order; garbage after them is rejected and closes."""

    @settings(FUZZ, max_examples=200)
    @given(requests=pipelined)
    def test_pipelined_requests(self, target: FuzzTarget, requests: list[tuple[str, str]]) -> None:
        """N requests sent at once get N answers, in order."""
        headers = [(b"host", b"fuzz"), (b"content-length", b"%d" % len(BODY))]
        data = b"".join(request(method, path, headers, BODY) for method, path in requests)
        with socket.create_connection(("127.0.0.1", target.port), timeout=10.0) as sock:
            sock.sendall(data)
            statuses, _ = read_responses(sock, len(requests), 10.0)
        assert statuses == [404 if p == "/nope" else 200 for _, p in requests]
        target.alive()

    @pytest.mark.parametrize("garbage", [b"\x00\x01 nonsense\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"])
    def test_garbage_after_a_valid_request(self, target: FuzzTarget, garbage: bytes) -> None:
        """A valid request followed by garbage in the same packet: the request is answered, then 400, then close."""
        headers = [(b"host", b"fuzz"), (b"content-length", b"%d" % len(BODY))]
        with socket.create_connection(("127.0.0.1", target.port), timeout=10.0) as sock:
            sock.sendall(request("GET", "/workers", headers, BODY) + garbage)
            statuses, closed = read_responses(sock, 2, 10.0)
            if not closed:
                closed = sock.recv(1) == b""
        assert statuses == [200, 400]
        assert closed
        target.alive()


header_names = st.one_of(
    st.sampled_from(
        [
            b"content-type",
            b"x-session-id",
            b"authorization",
            b"x-request-id",
            b"accept",
            b"connection",
            b"expect",
            b"upgrade",
            b"te",
            b"host",
        ]
    ),
    st.binary(min_size=1, max_size=24).filter(lambda b: b":" not in b and b"\r" not in b and b"\n" not in b),
)
header_values = st.one_of(
    st.binary(max_size=200).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from(
        [
            b"close",
            b"keep-alive",
            b"100-continue",
            b"websocket",
            b"Bearer x",
            b"\x00",
            b"\xff" * 50,
            b"a" * 9000,
        ]
    ),
)


@pytest.mark.integration
@pytest.mark.slow
class TestHeaders:
    """Random header names and values, and bodies whose length disagrees with Content-Length."""

    @settings(FUZZ, max_examples=500)
    @given(path=st.sampled_from(PATHS), headers=st.lists(st.tuples(header_names, header_values), max_size=8))
    def test_random_headers(self, target: FuzzTarget, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Invalid bytes in names or values are rejected with 400; anything else is answered."""
        framing = [h for h in headers if h[0].lower() not in (b"content-length", b"transfer-encoding")]
        framing.append((b"content-length", b"%d" % len(BODY)))
        method = (
            "GET"
            if path in ("/health", "/workers", "/models", "/v1/models", "/metrics", "/stats")
            else "POST"
        )
        answer = raw_exchange(
            target.port, request(method, path, framing, BODY), timeout=10.0, wait_close=False
        )
        assert answer.status is not None or answer.closed, f"hung on {headers!r}"
        sane(target, answer)

    @settings(FUZZ, max_examples=300)
    @given(
        path=st.sampled_from(["/v1/completions", "/v1/chat/completions", "/add_worker"]),
        delta=st.integers(-25, 25).filter(bool),
        stream=st.booleans(),
    )
    def test_content_length_mismatch(self, target: FuzzTarget, path: str, delta: int, stream: bool) -> None:
        """A body shorter or longer than announced: no hang, no 5xx, nothing left open (the client then leaves)."""
        body = b'{"prompt": "p", "stream": %s, "x": "%s"}' % (b"true" if stream else b"false", b"y" * 30)
        headers = [(b"host", b"fuzz"), (b"content-length", b"%d" % max(0, len(body) + delta))]
        with socket.create_connection(("127.0.0.1", target.port), timeout=10.0) as sock:
            sock.sendall(request("POST", path, headers, body))
            sock.shutdown(
                socket.SHUT_WR
            )  # the client is done: a server still waiting for body bytes gets EOF
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        for head in received.split(b"HTTP/1.1 ")[1:]:
            status = int(head[:3])
            assert problem(status, head) is None, problem(status, head)
        target.alive()


chunk_framings = st.one_of(
    st.sampled_from(
        [
            b"zz\r\nab\r\n0\r\n\r\n",
            b"-1\r\nx\r\n0\r\n\r\n",
            b"2\r\nabcd\r\n0\r\n\r\n",
            b"ffffffffffffffffffff\r\nx\r\n",
            b"2;x=\x00\r\nab\r\n0\r\n\r\n",
            b"\r\n\r\n",
            b"0x2\r\nab\r\n0\r\n\r\n",
            b"2 2\r\nab\r\n0\r\n\r\n",
        ]
    ),
    st.tuples(st.binary(min_size=1, max_size=6), st.binary(max_size=20)).map(
        lambda t: t[0].replace(b"\r", b"").replace(b"\n", b"") + b"\r\n" + t[1] + b"\r\n0\r\n\r\n"
    ),
)


@pytest.mark.integration
@pytest.mark.slow
class TestChunkedBodies:
    """Broken chunked transfer encoding."""

    @settings(FUZZ, max_examples=300)
    @given(
        path=st.sampled_from(["/v1/completions", "/v1/chat/completions", "/add_worker", "/workers"]),
        framing=chunk_framings,
    )
    def test_bad_chunks(self, target: FuzzTarget, path: str, framing: bytes) -> None:
        """Invalid chunk sizes or data: 400 and closed, never a hang."""
        headers = [(b"host", b"fuzz"), (b"transfer-encoding", b"chunked")]
        method = "GET" if path == "/workers" else "POST"
        data = request(method, path, headers, framing)
        # The client half-closes after its bytes: a framing that announced more data ends at EOF, not in a wait.
        answer = raw_exchange(target.port, data, timeout=10.0, half_close=True)
        assert not answer.timed_out, f"hung on {framing!r}: {answer.raw[:200]!r}"
        if answer.status in REJECTIONS:
            assert answer.closed
        sane(target, answer)

    def test_nothing_left_open(self, target: FuzzTarget) -> None:
        """After every raw case, every count is back to zero."""
        target.settled()
