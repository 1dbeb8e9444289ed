"""A bounded in-memory window of recent traffic, for GET /stats, the dashboard and `gllm status`.

Time is cut into one-second slots kept in a ring (five minutes by default), so memory is fixed whatever the
traffic. Each slot counts requests and errors, overall and per worker, and keeps latencies in a sparse
log-scale histogram (bins 8 % wide), so any percentile over any span merges a few small dicts: recording a
request costs a handful of dict updates, never a sort or a list that grows.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

DEFAULT_WINDOW_S = 300
RECENT_ERRORS = 50
SAMPLE_INTERVAL_S = 0.5  # in-flight sampling: twice a second, so that every one-second slot gets a sample

LATENCY_MIN_S = 0.001
LATENCY_RATIO = 1.08
_LOG_RATIO = math.log(LATENCY_RATIO)
_SCALE = 1 / _LOG_RATIO
_OFFSET = 1 - math.log(LATENCY_MIN_S) * _SCALE
MAX_BIN = int(math.log(3600 / LATENCY_MIN_S) / _LOG_RATIO) + 1  # everything beyond an hour shares one bin

Histogram = dict[int, int]


class HasInFlight(Protocol):
    """What the in-flight sampler reads from a worker record."""

    @property
    def address(self) -> str: ...

    @property
    def in_flight(self) -> int: ...


def latency_bin(seconds: float) -> int:
    """The histogram bin of a latency (bin 0 holds everything up to 1 ms)."""
    if seconds <= LATENCY_MIN_S:
        return 0
    index = int(math.log(seconds) * _SCALE + _OFFSET)  # = floor(log_ratio(seconds / min)) + 1
    return index if index < MAX_BIN else MAX_BIN


def bin_value(index: int) -> float:
    """A representative latency of a bin (its geometric middle), in seconds."""
    if index <= 0:
        return LATENCY_MIN_S
    return LATENCY_MIN_S * math.exp((index - 0.5) * _LOG_RATIO)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram in seconds; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bin_value(index)
    return bin_value(max(histogram))  # unreachable: the loop always reaches `total`


def merge(into: Histogram, other: Mapping[int, int]) -> None:
    """Add the counts of `other` to `into`."""
    for index, count in other.items():
        into[index] = into.get(index, 0) + count


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class _WorkerSlot:
    """One worker's traffic in one second."""

    __slots__ = ("errors", "latency", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency: Histogram = {}


class _Slot:
    """All traffic in one second."""

    __slots__ = ("errors", "in_flight", "latency", "requests", "second", "ttfb", "workers")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.errors = 0
        self.latency: Histogram = {}
        self.ttfb: Histogram = {}
        self.workers: dict[str, _WorkerSlot] = {}
        self.in_flight: dict[str, int] = {}  # the highest in-flight count sampled in this second


class _Totals:
    """Traffic summed over a span of slots."""

    __slots__ = ("errors", "latency", "requests", "ttfb")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency: Histogram = {}
        self.ttfb: Histogram = {}

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(self.requests / seconds, 3),
            "latency_p50_ms": _ms(percentile(self.latency, 0.5)),
            "latency_p99_ms": _ms(percentile(self.latency, 0.99)),
            "ttfb_p50_ms": _ms(percentile(self.ttfb, 0.5)),
        }


class StatsWindow:
    """The last `seconds` of traffic in one-second slots; owned by one balancer, used on its event loop."""

    def __init__(
        self,
        seconds: int = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.time,
        max_errors: int = RECENT_ERRORS,
    ) -> None:
        if seconds < 2:
            raise ValueError("the stats window must cover at least 2 seconds")
        self.seconds = seconds
        self._clock = clock
        self._slots: list[_Slot | None] = [None] * seconds
        self._errors: deque[dict[str, Any]] = deque(maxlen=max_errors)
        self.started = clock()

    def _slot(self, now: float) -> _Slot:
        second = int(now)
        index = second % self.seconds
        slot = self._slots[index]
        if slot is None or slot.second != second:
            slot = self._slots[index] = _Slot(second)
        return slot

    def record(
        self, worker: str | None, status: int, total_s: float, ttfb_s: float | None, error: bool
    ) -> None:
        """Count one finished request (`worker` None: it never reached one)."""
        second = int(self._clock())
        slot = self._slots[second % self.seconds]
        if slot is None or slot.second != second:
            slot = self._slots[second % self.seconds] = _Slot(second)
        slot.requests += 1
        index = latency_bin(total_s)
        slot.latency[index] = slot.latency.get(index, 0) + 1
        if ttfb_s is not None:
            first = latency_bin(ttfb_s)
            slot.ttfb[first] = slot.ttfb.get(first, 0) + 1
        if error:
            slot.errors += 1
        if worker is not None:
            per = slot.workers.get(worker)
            if per is None:
                per = slot.workers[worker] = _WorkerSlot()
            per.requests += 1
            per.latency[index] = per.latency.get(index, 0) + 1
            if error:
                per.errors += 1

    def error(self, route: str, status: int, worker: str | None, message: str) -> None:
        """Remember a failed request for the dashboard's "recent errors" (the oldest fall off)."""
        self._errors.append(
            {
                "time": round(self._clock(), 3),
                "route": route,
                "status": status,
                "worker": worker,
                "message": message[:500],
            }
        )

    def sample_in_flight(self, workers: Iterable[HasInFlight]) -> None:
        """Record the workers' current in-flight counts (each slot keeps the highest seen)."""
        seen = self._slot(self._clock()).in_flight
        for worker in workers:
            count = worker.in_flight
            if count >= seen.get(worker.address, 0):
                seen[worker.address] = count

    async def run(
        self, workers: Callable[[], Iterable[HasInFlight]], interval: float = SAMPLE_INTERVAL_S
    ) -> None:
        """Sample in-flight counts until cancelled (spawn it as a background task)."""
        while True:
            self.sample_in_flight(workers())
            await asyncio.sleep(interval)

    # -- reading -----------------------------------------------------------------------------------------------

    def _slots_between(self, start: int, end: int) -> Iterable[_Slot]:
        """Slots for seconds in [start, end) that hold data."""
        for second in range(max(start, end - self.seconds), end):
            slot = self._slots[second % self.seconds]
            if slot is not None and slot.second == second:
                yield slot

    def recent(self, span_s: int = 60) -> dict[str, Any]:
        """Totals and per-worker figures over the last `span_s` seconds (the current one included)."""
        now = self._clock()
        end = int(now) + 1
        span = min(span_s, self.seconds)
        seconds = max(1.0, min(float(span), now - self.started))  # a young balancer: rate over its age
        total = _Totals()
        workers: dict[str, _Totals] = {}
        for slot in self._slots_between(end - span, end):
            total.requests += slot.requests
            total.errors += slot.errors
            merge(total.latency, slot.latency)
            merge(total.ttfb, slot.ttfb)
            for address, per in slot.workers.items():
                acc = workers.get(address)
                if acc is None:
                    acc = workers[address] = _Totals()
                acc.requests += per.requests
                acc.errors += per.errors
                merge(acc.latency, per.latency)
        return {
            "span_s": span,
            "total": total.summary(seconds),
            "workers": {address: acc.summary(seconds) for address, acc in workers.items()},
        }

    def series(self, window_s: int | None = None, step_s: int = 1) -> dict[str, Any]:
        """Per-step series over the last `window_s` complete seconds, oldest first, for charts."""
        window = min(window_s or self.seconds, self.seconds - 1)
        step = max(1, min(step_s, window))
        points = max(1, window // step)
        end = int(self._clock())  # the current second is still filling: left out
        start = end - points * step
        times: list[int] = []
        rps: list[float] = []
        errors: list[float] = []
        p50: list[float | None] = []
        p99: list[float | None] = []
        ttfb50: list[float | None] = []
        per_worker: dict[str, dict[str, list[Any]]] = {}
        for i in range(points):
            begin = start + i * step
            acc = _Totals()
            worker_requests: dict[str, int] = {}
            worker_in_flight: dict[str, int] = {}
            for slot in self._slots_between(begin, begin + step):
                acc.requests += slot.requests
                acc.errors += slot.errors
                merge(acc.latency, slot.latency)
                merge(acc.ttfb, slot.ttfb)
                for address, per in slot.workers.items():
                    worker_requests[address] = worker_requests.get(address, 0) + per.requests
                for address, count in slot.in_flight.items():
                    worker_in_flight[address] = max(count, worker_in_flight.get(address, 0))
            times.append(begin)
            rps.append(round(acc.requests / step, 3))
            errors.append(round(acc.errors / step, 3))
            p50.append(_ms(percentile(acc.latency, 0.5)))
            p99.append(_ms(percentile(acc.latency, 0.99)))
            ttfb50.append(_ms(percentile(acc.ttfb, 0.5)))
            for address in worker_requests.keys() | worker_in_flight.keys():
                columns = per_worker.get(address)
                if columns is None:
                    columns = per_worker[address] = {
                        "requests_per_s": [0.0] * points,
                        "in_flight": [None] * points,
                    }
                columns["requests_per_s"][i] = round(worker_requests.get(address, 0) / step, 3)
                columns["in_flight"][i] = worker_in_flight.get(address)
        return {
            "window_s": points * step,
            "step_s": step,
            "t": times,
            "requests_per_s": rps,
            "errors_per_s": errors,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "ttfb_p50_ms": ttfb50,
            "workers": per_worker,
        }

    def recent_errors(self) -> list[dict[str, Any]]:
        """The most recent failed requests, newest first."""
        return list(reversed(self._errors))
