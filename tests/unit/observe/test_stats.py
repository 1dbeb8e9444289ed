"""The bounded stats window: bins, percentiles, per-second slots, series and recent errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from gllm.balancer.stats import (
    LATENCY_RATIO,
    MAX_BIN,
    StatsWindow,
    bin_value,
    latency_bin,
    percentile,
)


class Clock:
    """A settable clock for the window."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeWorker:
    address: str
    in_flight: int


@pytest.mark.unit
class TestLatencyBins:
    """Log-scale bins and the percentiles read from them."""

    @pytest.mark.parametrize("seconds", [0.0015, 0.01, 0.25, 1.0, 7.5, 120.0, 599.0])
    def test_bin_value_is_close(self, seconds: float) -> None:
        """A bin's representative value is within one bin width of what went in."""
        value = bin_value(latency_bin(seconds))
        assert seconds / LATENCY_RATIO <= value <= seconds * LATENCY_RATIO

    def test_bins_grow_with_latency(self) -> None:
        """Longer latencies never land in lower bins; tiny and huge ones are clamped."""
        samples = [0.0, 0.0005, 0.001, 0.002, 0.01, 0.1, 1.0, 10.0, 100.0, 3600.0, 1e9]
        bins = [latency_bin(s) for s in samples]
        assert bins == sorted(bins)
        assert bins[0] == 0
        assert bins[-1] == MAX_BIN

    def test_percentiles(self) -> None:
        """p50 and p99 of a known spread come out within a bin width."""
        histogram: dict[int, int] = {}
        for ms in range(1, 1001):
            index = latency_bin(ms / 1000)
            histogram[index] = histogram.get(index, 0) + 1
        p50 = percentile(histogram, 0.5)
        p99 = percentile(histogram, 0.99)
        assert p50 is not None
        assert p99 is not None
        assert 0.5 / LATENCY_RATIO <= p50 <= 0.5 * LATENCY_RATIO
        assert 0.99 / LATENCY_RATIO <= p99 <= 0.99 * LATENCY_RATIO

    def test_empty_percentile(self) -> None:
        """No samples: no percentile."""
        assert percentile({}, 0.5) is None


@pytest.mark.unit
class TestRecent:
    """Last-minute totals and per-worker figures."""

    def test_counts_and_rates(self) -> None:
        """Requests, errors and rates are counted overall and per worker."""
        clock = Clock()
        window = StatsWindow(clock=clock)
        clock.now += 100  # the window has been up for longer than a minute
        for _ in range(30):
            window.record("http://a", 200, 0.1, 0.01, False)
        for _ in range(10):
            window.record("http://b", 502, 0.2, None, True)
        window.record(None, 503, 0.001, None, True)
        recent = window.recent(60)
        assert recent["total"]["requests"] == 41
        assert recent["total"]["errors"] == 11
        assert recent["total"]["requests_per_s"] == pytest.approx(41 / 60, abs=0.001)
        assert recent["workers"]["http://a"]["requests"] == 30
        assert recent["workers"]["http://a"]["errors"] == 0
        assert recent["workers"]["http://b"]["errors"] == 10
        p50 = recent["workers"]["http://a"]["latency_p50_ms"]
        assert 100 / LATENCY_RATIO <= p50 <= 100 * LATENCY_RATIO
        assert recent["total"]["ttfb_p50_ms"] == pytest.approx(10, rel=0.1)

    def test_young_window_rates_over_its_age(self) -> None:
        """A balancer up for 10 s reports its rate over those 10 s, not over a minute."""
        clock = Clock()
        window = StatsWindow(clock=clock)
        clock.now += 10
        for _ in range(50):
            window.record("http://a", 200, 0.1, 0.01, False)
        assert window.recent(60)["total"]["requests_per_s"] == pytest.approx(5.0)

    def test_old_traffic_leaves_the_span(self) -> None:
        """Requests older than the span do not count."""
        clock = Clock()
        window = StatsWindow(clock=clock)
        window.record("http://a", 200, 0.1, 0.01, False)
        clock.now += 61
        window.record("http://a", 200, 0.1, 0.01, False)
        assert window.recent(60)["total"]["requests"] == 1

    def test_memory_is_fixed(self) -> None:
        """Hours of traffic keep one slot per second of the window, no more."""
        clock = Clock()
        window = StatsWindow(seconds=30, clock=clock)
        for _ in range(3600):
            window.record("http://a", 200, 0.1, 0.01, False)
            clock.now += 1
        assert len(window._slots) == 30
        assert window.recent(30)["total"]["requests"] == 29  # the current second is empty

    def test_window_too_small(self) -> None:
        """A window must span at least two seconds."""
        with pytest.raises(ValueError, match="at least 2"):
            StatsWindow(seconds=1)


@pytest.mark.unit
class TestSeries:
    """Chart series: per-step points over the window, oldest first."""

    def test_steps_aggregate(self) -> None:
        """Each point sums its step's seconds; the current second is left out."""
        clock = Clock(1_000_000.0)
        window = StatsWindow(seconds=60, clock=clock)
        for second in range(10):
            for _ in range(second + 1):
                window.record("http://a", 200, 0.05, 0.01, False)
            clock.now += 1
        series = window.series(10, 5)
        assert series["window_s"] == 10
        assert series["step_s"] == 5
        assert series["t"] == [1_000_000, 1_000_005]
        assert series["requests_per_s"] == [pytest.approx((1 + 2 + 3 + 4 + 5) / 5), pytest.approx(8.0)]
        assert series["workers"]["http://a"]["requests_per_s"] == series["requests_per_s"]
        assert series["latency_p50_ms"][0] == pytest.approx(50, rel=0.1)

    def test_in_flight_samples(self) -> None:
        """In-flight points are the highest sample in their step; steps without samples are null."""
        clock = Clock(2_000_000.0)
        window = StatsWindow(seconds=60, clock=clock)
        window.sample_in_flight([FakeWorker("http://a", 3), FakeWorker("http://b", 1)])
        window.sample_in_flight([FakeWorker("http://a", 1), FakeWorker("http://b", 4)])
        clock.now += 2
        window.sample_in_flight([FakeWorker("http://a", 2), FakeWorker("http://b", 0)])
        clock.now += 1
        series = window.series(3, 1)
        assert series["workers"]["http://a"]["in_flight"] == [3, None, 2]
        assert series["workers"]["http://b"]["in_flight"] == [4, None, 0]
        assert series["requests_per_s"] == [0.0, 0.0, 0.0]
        assert series["latency_p50_ms"] == [None, None, None]

    def test_window_is_clamped(self) -> None:
        """Asking for more than the window gives the whole window."""
        window = StatsWindow(seconds=30, clock=Clock())
        series = window.series(1000, 1)
        assert series["window_s"] == 29
        assert len(series["t"]) == 29


@pytest.mark.unit
class TestRecentErrors:
    """The recent errors list: bounded, newest first, messages cut."""

    def test_bounded_newest_first(self) -> None:
        """Only the last `max_errors` stay, newest first."""
        window = StatsWindow(clock=Clock(), max_errors=3)
        for i in range(5):
            window.error("/completions", 502, f"http://w{i}", f"failure {i}" + "x" * 1000)
        errors = window.recent_errors()
        assert [e["worker"] for e in errors] == ["http://w4", "http://w3", "http://w2"]
        assert len(errors[0]["message"]) == 500
        assert errors[0]["route"] == "/completions"
        assert errors[0]["status"] == 502


@pytest.mark.unit
class TestSampler:
    """The background sampler records in-flight counts until cancelled."""

    def test_run_samples(self) -> None:
        """`run` samples the workers it is given, and stops when cancelled."""
        clock = Clock()
        window = StatsWindow(clock=clock)
        worker = FakeWorker("http://a", 7)

        async def scenario() -> None:
            task = asyncio.create_task(window.run(lambda: [worker], interval=0.01))
            for _ in range(500):
                if window._slots[int(clock.now) % window.seconds] is not None:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(scenario())
        clock.now += 1
        assert window.series(2, 1)["workers"]["http://a"]["in_flight"][-1] == 7
