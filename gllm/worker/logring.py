"""A bounded ring of an engine's output lines, fed with raw bytes as they arrive."""

from __future__ import annotations

import collections
from collections.abc import Callable

# A line longer than this is cut: an engine printing megabytes without a newline must not grow memory.
MAX_LINE_CHARS = 4096


class LogRing:
    """Keep the last `maxlen` lines of a byte stream; optionally hand each complete line to `echo`."""

    def __init__(self, maxlen: int = 200, echo: Callable[[str], None] | None = None) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=maxlen)
        self._partial = b""
        self._echo = echo

    def feed(self, data: bytes) -> None:
        """Add a chunk of output; complete lines enter the ring, a trailing partial line waits for more."""
        buffer = self._partial + data
        *complete, self._partial = buffer.split(b"\n")
        if len(self._partial) > MAX_LINE_CHARS:
            complete.append(self._partial)
            self._partial = b""
        for raw in complete:
            self._add(raw)

    def flush(self) -> None:
        """Commit a trailing partial line (at end of stream)."""
        if self._partial:
            self._add(self._partial)
            self._partial = b""

    def lines(self, last: int | None = None) -> list[str]:
        """The kept lines, oldest first; only the `last` ones when given."""
        lines = list(self._lines)
        return lines if last is None else lines[-last:] if last > 0 else []

    def _add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")[:MAX_LINE_CHARS]
        self._lines.append(line)
        if self._echo is not None:
            self._echo(line)
