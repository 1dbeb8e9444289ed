"""Server-sent events: turn the lines of an OpenAI stream into JSON chunks, without I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gllm.client._protocol import error_from_payload
from gllm.client.errors import GLLMError

DONE = "[DONE]"


class SSEParser:
    """Collect `data:` lines into events; an event is complete at a blank line (per the SSE standard)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Feed one line without its line ending; return the event's data when this line completes one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment, used as keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None  # event:, id: and retry: carry nothing an OpenAI client needs

    def finish(self) -> str | None:
        """The data of a last event that the stream ended without a blank line after."""
        return self._dispatch()

    def _dispatch(self) -> str | None:
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data


def decode_event(data: str) -> dict[str, Any] | None:
    """The JSON chunk of one event; None for the final `[DONE]`. An error event raises RemoteError."""
    if data.strip() == DONE:
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise GLLMError(f"invalid JSON in stream event: {data[:200]!r}") from exc
    if not isinstance(chunk, dict):
        raise GLLMError(f"expected a JSON object in stream event, got {data[:200]!r}")
    error = error_from_payload(chunk)
    if error is not None:
        raise error
    return chunk


class ChunkDecoder:
    """Lines in, items out: SSE parsing, JSON decoding and a shaping function, stopping at `[DONE]`."""

    def __init__(self, shape: Callable[[dict[str, Any]], Any | None] = lambda chunk: chunk) -> None:
        self._parser = SSEParser()
        self._shape = shape
        self.done = False

    def feed(self, line: str) -> list[Any]:
        """Feed one line (without its line ending); return the items it completes (usually none or one)."""
        if self.done:
            return []
        return self._items(self._parser.feed(line))

    def finish(self) -> list[Any]:
        """Call when the stream ends: the items of a last event that had no blank line after it."""
        if self.done:
            return []
        return self._items(self._parser.finish())

    def _items(self, data: str | None) -> list[Any]:
        if data is None:
            return []
        chunk = decode_event(data)
        if chunk is None:
            self.done = True
            return []
        shaped = self._shape(chunk)
        return [] if shaped is None else [shaped]
