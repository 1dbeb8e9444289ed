"""Header rules: hop-by-hop filtering and status lines."""

from __future__ import annotations

import pytest

from gllm.http.headers import HOP_BY_HOP, connection_tokens, end_to_end, get_header, status_line


@pytest.mark.unit
class TestEndToEnd:
    """Only end-to-end headers are forwarded, in order, duplicates kept."""

    def test_hop_by_hop_dropped(self) -> None:
        """Every RFC 9110 hop-by-hop header is dropped; the rest pass in order."""
        headers = [(b"authorization", b"Bearer x")]
        headers += [(name, b"v") for name in sorted(HOP_BY_HOP)]
        headers += [(b"x-a", b"1"), (b"x-a", b"2"), (b"content-type", b"application/json")]
        assert end_to_end(headers) == (
            b"authorization: Bearer x\r\nx-a: 1\r\nx-a: 2\r\ncontent-type: application/json\r\n"
        )

    def test_connection_tokens_dropped(self) -> None:
        """Headers named in Connection are hop-by-hop for this message."""
        headers = [
            (b"connection", b"keep-alive, X-Secret , x-other"),
            (b"x-secret", b"1"),
            (b"x-other", b"2"),
        ]
        headers.append((b"x-kept", b"3"))
        assert connection_tokens(headers) == {b"keep-alive", b"x-secret", b"x-other"}
        assert end_to_end(headers) == b"x-kept: 3\r\n"

    def test_also_drop(self) -> None:
        """Extra names can be dropped by the caller (the proxy drops host and content-length)."""
        headers = [(b"host", b"a"), (b"content-length", b"3"), (b"accept", b"*/*")]
        assert end_to_end(headers, (b"host", b"content-length")) == b"accept: */*\r\n"

    def test_empty(self) -> None:
        """No headers serialize to nothing."""
        assert end_to_end([]) == b""


@pytest.mark.unit
class TestHelpers:
    """Status lines and header lookup."""

    @pytest.mark.parametrize(
        ("status", "line"),
        [
            (200, b"HTTP/1.1 200 OK\r\n"),
            (404, b"HTTP/1.1 404 Not Found\r\n"),
            (504, b"HTTP/1.1 504 Gateway Timeout\r\n"),
            (599, b"HTTP/1.1 599 \r\n"),
        ],
    )
    def test_status_line(self, status: int, line: bytes) -> None:
        """Known codes get their reason phrase, unknown ones an empty reason."""
        assert status_line(status) == line

    def test_status_line_version(self) -> None:
        """The version can be 1.0 for HTTP/1.0 clients."""
        assert status_line(200, b"1.0") == b"HTTP/1.0 200 OK\r\n"

    def test_get_header_first_value(self) -> None:
        """`get_header` returns the first value, or None."""
        headers = [(b"x", b"1"), (b"x", b"2")]
        assert get_header(headers, b"x") == b"1"
        assert get_header(headers, b"y") is None
