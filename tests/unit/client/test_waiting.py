"""Deadlines and probe outcomes of the wait_for_* loops."""

from __future__ import annotations

import pytest

from gllm.client._waiting import (
    PROBE_TIMEOUT_MAX,
    Deadline,
    check_interval_ok,
    is_healthy_status,
    is_live_status,
    is_transient,
)
from gllm.client.errors import GLLMConnectionError, GLLMError, GLLMTimeoutError, RemoteError


@pytest.mark.unit
class TestDeadline:
    """Time left, probe timeouts and pauses."""

    def test_remaining(self) -> None:
        """A fresh deadline has (almost) all its time; an old one none."""
        assert 9.0 < Deadline(10.0).remaining() <= 10.0
        expired = Deadline(1.0, start=0.0)
        assert expired.remaining() == 0.0
        assert expired.expired()

    def test_probe_timeout_is_bounded(self) -> None:
        """A probe waits at most PROBE_TIMEOUT_MAX, at least a little, and not much past the deadline."""
        assert Deadline(300.0).probe_timeout(60.0) == PROBE_TIMEOUT_MAX
        assert Deadline(300.0).probe_timeout(0.1) == 1.0
        assert Deadline(1.0, start=0.0).probe_timeout(5.0) == 0.05

    def test_pause_is_cut_by_the_deadline(self) -> None:
        """The pause never runs past the deadline."""
        assert Deadline(300.0).pause(5.0) == 5.0
        assert Deadline(1.0, start=0.0).pause(5.0) == 0.0

    def test_negative_timeout(self) -> None:
        """A negative timeout is a mistake."""
        with pytest.raises(ValueError):
            Deadline(-1.0)

    def test_check_interval(self) -> None:
        """A zero interval would spin."""
        with pytest.raises(ValueError):
            check_interval_ok(0)
        check_interval_ok(0.01)


@pytest.mark.unit
class TestProbeOutcomes:
    """Which probe failures mean "not yet"."""

    @pytest.mark.parametrize(
        "exc",
        [GLLMConnectionError("x"), GLLMTimeoutError("x"), RemoteError(503, "loading"), RemoteError(429, "x")],
    )
    def test_transient(self, exc: Exception) -> None:
        """Unreachable, slow or busy: keep waiting."""
        assert is_transient(exc)

    @pytest.mark.parametrize("exc", [RemoteError(401, "key"), RemoteError(500, "bug"), GLLMError("garbage")])
    def test_real_errors(self, exc: Exception) -> None:
        """Auth failures, server bugs and protocol errors stop the wait."""
        assert not is_transient(exc)

    def test_statuses(self) -> None:
        """Healthy is 200 only; live is any answer."""
        assert is_healthy_status(200)
        assert not is_healthy_status(503)
        assert not is_healthy_status(None)
        assert is_live_status(503)
        assert not is_live_status(None)
