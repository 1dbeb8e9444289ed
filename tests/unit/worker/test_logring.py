"""The engine output ring buffer."""

from __future__ import annotations

import pytest

from gllm.worker.logring import MAX_LINE_CHARS, LogRing


@pytest.mark.unit
class TestLogRing:
    """Bounded, line-oriented, robust to odd bytes."""

    def test_keeps_only_the_last_lines(self) -> None:
        """Older lines fall out."""
        ring = LogRing(maxlen=3)
        ring.feed(b"".join(f"line {i}\n".encode() for i in range(10)))
        assert ring.lines() == ["line 7", "line 8", "line 9"]

    def test_partial_lines_wait_for_their_end(self) -> None:
        """A line split across chunks is one line."""
        ring = LogRing()
        ring.feed(b"hel")
        assert ring.lines() == []
        ring.feed(b"lo\r\nwor")
        ring.flush()
        assert ring.lines() == ["hello", "wor"]

    def test_huge_line_is_cut(self) -> None:
        """A line without newline cannot grow memory without bound."""
        ring = LogRing()
        for _ in range(10):
            ring.feed(b"x" * MAX_LINE_CHARS)
        assert all(len(line) <= MAX_LINE_CHARS for line in ring.lines())
        assert ring.lines()

    def test_invalid_utf8_is_replaced(self) -> None:
        """Bad bytes do not raise."""
        ring = LogRing()
        ring.feed(b"\xff\xfeok\n")
        assert ring.lines()[0].endswith("ok")

    def test_echo_sees_each_line(self) -> None:
        """The echo callback gets complete lines."""
        seen: list[str] = []
        ring = LogRing(echo=seen.append)
        ring.feed(b"a\nb\nc")
        assert seen == ["a", "b"]

    @pytest.mark.parametrize(("last", "expected"), [(None, ["a", "b", "c"]), (2, ["b", "c"]), (0, [])])
    def test_last_n(self, last: int | None, expected: list[str]) -> None:
        """lines(last=n) gives the newest n."""
        ring = LogRing()
        ring.feed(b"a\nb\nc\n")
        assert ring.lines(last) == expected
