"""SSE parsing and chunk decoding."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gllm.client._sse import ChunkDecoder, SSEParser, decode_event
from gllm.client.errors import GLLMError, RemoteError


def feed_all(parser: SSEParser, lines: list[str]) -> list[str]:
    """Every event the lines complete, plus a trailing one."""
    events = [data for line in lines if (data := parser.feed(line)) is not None]
    tail = parser.finish()
    return [*events, tail] if tail is not None else events


@pytest.mark.unit
class TestSSEParser:
    """Events from lines."""

    def test_one_event_per_blank_line(self) -> None:
        """Each blank line ends an event."""
        assert feed_all(SSEParser(), ["data: a", "", "data: b", ""]) == ["a", "b"]

    def test_multiline_data(self) -> None:
        """Several data lines join with newlines."""
        assert feed_all(SSEParser(), ["data: a", "data: b", ""]) == ["a\nb"]

    def test_optional_space(self) -> None:
        """One space after the colon is dropped, no more."""
        assert feed_all(SSEParser(), ["data:x", "", "data:  y", ""]) == ["x", " y"]

    def test_comments_and_other_fields(self) -> None:
        """Comments (keep-alives), event, id and retry lines carry no data."""
        lines = [": ping", "event: message", "id: 3", "retry: 10", "data: z", ""]
        assert feed_all(SSEParser(), lines) == ["z"]

    def test_blank_lines_alone_make_no_event(self) -> None:
        """Repeated blank lines are not empty events."""
        assert feed_all(SSEParser(), ["", "", "data: q", "", ""]) == ["q"]

    def test_unterminated_last_event(self) -> None:
        """A stream ending without a blank line still gives its last event."""
        assert feed_all(SSEParser(), ["data: a", "", "data: b"]) == ["a", "b"]

    @given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20), max_size=10))
    def test_round_trip(self, payloads: list[str]) -> None:
        """Whatever single-line payloads are framed, they come back in order."""
        lines: list[str] = []
        for payload in payloads:
            lines += [f"data: {payload}", ""]
        assert feed_all(SSEParser(), lines) == [p for p in payloads]


@pytest.mark.unit
class TestDecodeEvent:
    """Event data to JSON chunks."""

    def test_chunk(self) -> None:
        """JSON objects decode."""
        assert decode_event('{"choices": []}') == {"choices": []}

    def test_done(self) -> None:
        """[DONE] ends the stream."""
        assert decode_event("[DONE]") is None
        assert decode_event(" [DONE] ") is None

    def test_error_event(self) -> None:
        """An error event raises RemoteError."""
        with pytest.raises(RemoteError, match="overloaded") as info:
            decode_event('{"error": {"message": "overloaded", "code": 503}}')
        assert info.value.status_code == 503

    @pytest.mark.parametrize("data", ["not json", "[1, 2]", '"text"'])
    def test_garbage(self, data: str) -> None:
        """Anything but a JSON object is a protocol error."""
        with pytest.raises(GLLMError):
            decode_event(data)


@pytest.mark.unit
class TestChunkDecoder:
    """Lines to shaped items, up to [DONE]."""

    def test_stops_at_done(self) -> None:
        """Nothing after [DONE] is decoded, not even garbage."""
        decoder = ChunkDecoder()
        items: list[Any] = []
        for line in ['data: {"n": 1}', "", "data: [DONE]", "", "data: garbage", ""]:
            items += decoder.feed(line)
        assert items == [{"n": 1}]
        assert decoder.done
        assert decoder.finish() == []

    def test_shape_can_skip(self) -> None:
        """A shape returning None drops the chunk."""
        decoder = ChunkDecoder(lambda chunk: chunk["n"] if chunk["n"] % 2 else None)
        items: list[Any] = []
        for n in range(5):
            items += decoder.feed(f'data: {{"n": {n}}}')
            items += decoder.feed("")
        assert items == [1, 3]
        assert not decoder.done

    def test_finish_flushes(self) -> None:
        """An unterminated last chunk is delivered at finish()."""
        decoder = ChunkDecoder()
        assert decoder.feed('data: {"n": 1}') == []
        assert decoder.finish() == [{"n": 1}]
