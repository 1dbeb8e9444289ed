"""The upstream client's pure parts: origins, request bytes, response framing, chunked decoding."""

from __future__ import annotations

import pytest

from gllm.http.client import Origin, ResponseHead
from gllm.http.wire import build_request, decode_chunked


@pytest.mark.unit
class TestDecodeChunked:
    """Complete chunked bodies decode to their payload."""

    @pytest.mark.parametrize(
        ("raw", "decoded"),
        [
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"A;name=value\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n"),
            (b"3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n", b"abc"),
        ],
    )
    def test_decodes(self, raw: bytes, decoded: bytes) -> None:
        """Sizes are hex, extensions and trailers are ignored, CRLF inside data is data."""
        assert decode_chunked(raw) == decoded

    @pytest.mark.parametrize("raw", [b"", b"5\r\nhel", b"zz\r\nhello\r\n0\r\n\r\n"])
    def test_broken_input_raises(self, raw: bytes) -> None:
        """Truncated or malformed input raises ValueError instead of returning garbage."""
        with pytest.raises(ValueError):
            decode_chunked(raw)


@pytest.mark.unit
class TestOrigin:
    """Worker URLs parsed once."""

    def test_http_default_port(self) -> None:
        """http without a port means port 80; the Host header keeps the URL's spelling."""
        origin = Origin("http://worker")
        assert (origin.host, origin.port, origin.tls) == ("worker", 80, False)
        assert origin.host_header == b"worker"

    def test_https_and_port(self) -> None:
        """https means TLS and port 443 unless given."""
        assert Origin("https://w").port == 443
        origin = Origin("https://w:8443")
        assert (origin.port, origin.tls, origin.key) == (8443, True, "https://w:8443")

    def test_not_http(self) -> None:
        """Other schemes are refused."""
        with pytest.raises(ValueError):
            Origin("ftp://w:21")


@pytest.mark.unit
class TestFraming:
    """Request serialization and how a response body is delimited."""

    def test_build_request(self) -> None:
        """Method, path, Host, the given headers, Content-Length and the body, in that order."""
        data = build_request(Origin("http://w:8000"), "POST", "/completions", b"x-a: 1\r\n", b"{}")
        assert data == (
            b"POST /completions HTTP/1.1\r\nhost: w:8000\r\nx-a: 1\r\ncontent-length: 2\r\n\r\n{}"
        )

    def test_build_request_http10(self) -> None:
        """An HTTP/1.0 request line when asked."""
        assert build_request(Origin("http://w"), "GET", "/health", b"", b"", b"1.0").startswith(
            b"GET /health HTTP/1.0\r\n"
        )

    @pytest.mark.parametrize(
        ("status", "headers", "chunked", "length", "close_delimited"),
        [
            (200, [(b"content-length", b"12")], False, 12, False),
            (200, [(b"transfer-encoding", b"chunked")], True, None, False),
            (200, [(b"transfer-encoding", b"Chunked"), (b"content-length", b"5")], True, None, False),
            (200, [], False, None, True),
            (204, [], False, None, False),
            (200, [(b"content-length", b"abc")], False, None, True),
        ],
    )
    def test_response_head(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        chunked: bool,
        length: int | None,
        close_delimited: bool,
    ) -> None:
        """Chunked wins over Content-Length; no framing means the body ends at EOF (except 204/304)."""
        head = ResponseHead(status, headers, keep_alive=True)
        assert (head.chunked, head.content_length, head.close_delimited) == (chunked, length, close_delimited)
