"""SseRelay: forwards whole events only, keeps an incomplete tail pending, remembers what it sent."""

from __future__ import annotations

import pytest

from gllm.balancer.sse import SseRelay


def dechunk(wire: list[bytes]) -> list[bytes]:
    """The payloads of HTTP chunks written by the relay (each write is one chunk)."""
    payloads = []
    for chunk in wire:
        size, _, rest = chunk.partition(b"\r\n")
        assert rest.endswith(b"\r\n")
        payload = rest[:-2]
        assert int(size, 16) == len(payload)
        payloads.append(payload)
    return payloads


def relay() -> tuple[SseRelay, list[bytes]]:
    """A relay writing into a list."""
    wire: list[bytes] = []
    return SseRelay(wire.append), wire


@pytest.mark.unit
class TestWholeEvents:
    """Only complete events reach the client."""

    def test_one_event_per_feed(self) -> None:
        """A complete event is forwarded at once, as one chunk."""
        sse, wire = relay()
        sse.feed(b"data: 1\n\n")
        assert dechunk(wire) == [b"data: 1\n\n"]
        assert sse.text() == b"data: 1\n\n"

    def test_split_event_waits_for_its_end(self) -> None:
        """An event cut in the middle is held until its boundary arrives."""
        sse, wire = relay()
        sse.feed(b"data: hel")
        sse.feed(b"lo\n")
        assert wire == []
        assert sse.text() == b""
        sse.feed(b"\ndata: next")
        assert dechunk(wire) == [b"data: hello\n\n"]
        assert sse.text() == b"data: hello\n\n"

    def test_several_events_in_one_feed(self) -> None:
        """All complete events of a feed go in one chunk; the tail stays pending."""
        sse, wire = relay()
        sse.feed(b"data: a\n\ndata: b\n\ndata: c")
        assert dechunk(wire) == [b"data: a\n\ndata: b\n\n"]
        sse.feed(b"\n\n")
        assert dechunk(wire)[-1] == b"data: c\n\n"
        assert sse.text() == b"data: a\n\ndata: b\n\ndata: c\n\n"

    def test_crlf_boundaries(self) -> None:
        """CRLF CRLF ends an event too."""
        sse, wire = relay()
        sse.feed(b"data: a\r\n\r\ndata: b")
        assert dechunk(wire) == [b"data: a\r\n\r\n"]

    def test_byte_by_byte(self) -> None:
        """Feeding one byte at a time forwards exactly the same events."""
        stream = b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"
        sse, wire = relay()
        for i in range(len(stream)):
            sse.feed(stream[i : i + 1])
        assert b"".join(dechunk(wire)) == stream
        assert sse.text() == stream


@pytest.mark.unit
class TestFinish:
    """finish() flushes a pending tail and ends the chunked body."""

    def test_finish_flushes_tail_then_terminates(self) -> None:
        """An unterminated last event is forwarded at the end, then the zero chunk."""
        sse, wire = relay()
        sse.feed(b"data: a\n\ndata: tail")
        sse.finish()
        assert wire[-1] == b"0\r\n\r\n"
        assert dechunk(wire[:-1]) == [b"data: a\n\n", b"data: tail"]

    def test_finish_without_tail(self) -> None:
        """With nothing pending, only the terminating chunk is written."""
        sse, wire = relay()
        sse.feed(b"data: a\n\n")
        sse.finish()
        assert wire[1:] == [b"0\r\n\r\n"]

    def test_tail_is_not_in_text(self) -> None:
        """What a continuation sees excludes a half event (the client never got it whole)."""
        sse, _ = relay()
        sse.feed(b'data: a\n\ndata: {"half')
        assert sse.text() == b"data: a\n\n"
