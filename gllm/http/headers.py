"""Header rules shared by the server and the upstream client: hop-by-hop filtering, status lines."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

Headers = list[tuple[bytes, bytes]]
"""Header list as received: (lower-cased name, raw value), in order, duplicates kept."""

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded by a proxy.
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}


def status_line(status: int, version: bytes = b"1.1") -> bytes:
    """Return `HTTP/1.1 200 OK\\r\\n` for a status code (an unknown code gets an empty reason)."""
    return b"HTTP/%s %d %s\r\n" % (version, status, _REASONS.get(status, b""))


def connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Header names listed in `Connection:` (also hop-by-hop for this message)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def end_to_end(headers: Headers, also_drop: Iterable[bytes] = ()) -> bytes:
    """Serialize the end-to-end headers as `name: value\\r\\n` lines, dropping hop-by-hop ones."""
    drop = HOP_BY_HOP | connection_tokens(headers) | frozenset(also_drop)
    return b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers if name not in drop)


def get_header(headers: Headers, name: bytes) -> bytes | None:
    """Return the first value of header `name` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None
