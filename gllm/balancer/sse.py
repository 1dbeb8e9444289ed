"""Relay of server-sent events that forwards whole events only and keeps them for a possible continuation."""

from __future__ import annotations

from collections.abc import Callable

_BOUNDARIES = (b"\n\n", b"\r\n\r\n")


class SseRelay:
    """Writes each complete SSE event to the client in one HTTP chunk; remembers what was sent.

    Forwarding whole events only means that, if the worker dies mid-event, the client has seen a well-formed
    stream so far, which another worker can then continue.
    """

    __slots__ = ("_pending", "_write", "events")

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._pending = b""
        self.events: list[bytes] = []

    def feed(self, data: bytes) -> None:
        """Take body bytes from the worker; forward the complete events among them."""
        if not self._pending and data[-2:] == b"\n\n":  # the usual case: whole events only
            self.events.append(data)
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
            return
        buf = self._pending + data if self._pending else data
        end = -1
        for boundary in _BOUNDARIES:
            at = buf.rfind(boundary)
            if at >= 0:
                end = max(end, at + len(boundary))
        if end < 0:
            self._pending = buf
            return
        whole, self._pending = buf[:end], buf[end:]
        self.events.append(whole)
        self._write(b"%x\r\n%s\r\n" % (len(whole), whole))

    def drop_partial(self) -> None:
        """Forget an unterminated event: its worker died mid-event, and it must not prefix another's events."""
        self._pending = b""

    def finish(self) -> None:
        """The worker's stream ended: forward any unterminated tail and end the chunked body."""
        if self._pending:
            self._write(b"%x\r\n%s\r\n" % (len(self._pending), self._pending))
            self._pending = b""
        self._write(b"0\r\n\r\n")

    def text(self) -> bytes:
        """Every complete event forwarded so far."""
        return b"".join(self.events)
