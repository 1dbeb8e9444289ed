"""The wait_for_model progress display."""

from __future__ import annotations

import io

import pytest

from gllm.client._progress import NullProgress, RichProgress, make_progress
from gllm.client._workers import Readiness


class FakeTTY(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def state(ready: int, total: int) -> Readiness:
    """A readiness with `ready` of `total` workers ready and the rest loading."""
    states = {"ready": ready, "loading": total - ready} if total > ready else {"ready": ready}
    return Readiness("org/m", total, ready, states, {})


@pytest.mark.unit
class TestChoice:
    """A bar on terminals only, unless forced."""

    def test_not_a_terminal(self) -> None:
        """A pipe or file gets nothing."""
        stream = io.StringIO()
        reporter = make_progress("m", None, stream)
        assert isinstance(reporter, NullProgress)
        reporter.update(state(1, 2))
        reporter.close()
        assert stream.getvalue() == ""

    def test_terminal(self) -> None:
        """A terminal gets a rich bar."""
        reporter = make_progress("m", None, FakeTTY())
        try:
            assert isinstance(reporter, RichProgress)
        finally:
            reporter.close()

    def test_forced_off(self) -> None:
        """progress=False turns it off even on a terminal."""
        assert isinstance(make_progress("m", False, FakeTTY()), NullProgress)

    def test_closed_stream(self) -> None:
        """A closed stream is no terminal."""
        stream = io.StringIO()
        stream.close()
        assert isinstance(make_progress("m", None, stream), NullProgress)


@pytest.mark.unit
class TestRichBar:
    """What the bar shows."""

    def test_shows_model_counts_and_states(self) -> None:
        """The final render names the model, the ready count and the other states."""
        stream = FakeTTY()
        reporter = RichProgress("org/m", stream, force_terminal=True)
        reporter.update(state(1, 3))
        reporter.update(state(3, 3))
        reporter.close()
        output = stream.getvalue()
        assert "Loading org/m" in output
        assert "3/3" in output
        assert "3/3 ready" in output
