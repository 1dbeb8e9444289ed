"""Bytes on the wire: request serialization and chunked-body decoding."""

from __future__ import annotations

from gllm.http.client import Origin


def build_request(
    origin: Origin, method: str, path: str, headers: bytes, body: bytes, version: bytes = b"1.1"
) -> bytes:
    """Serialize a request; `headers` are ready `name: value\\r\\n` lines."""
    return b"%s %s HTTP/%s\r\nhost: %s\r\n%scontent-length: %d\r\n\r\n%s" % (
        method.encode(),
        path.encode(),
        version,
        origin.host_header,
        headers,
        len(body),
        body,
    )


def decode_chunked(raw: bytes) -> bytes:
    """Decode a complete chunked body (control-plane answers only; the proxy passes framing through)."""
    out: list[bytes] = []
    pos = 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(out)
        start = eol + 2
        out.append(raw[start : start + size])
        pos = start + size + 2
