"""The balancer's Prometheus metrics: one registry per balancer, calls on the hot path that cost ~1 µs.

prometheus-client's own Counter and Histogram take a lock and validate on every call (measured here: about
7 µs for the five updates of one request, a tenth of the balancer's whole CPU budget per request). The balancer
serves from one event loop, so the hot path here only bumps plain ints and bucket lists in cells cached per
label combination; `collect()` turns them into prometheus-client metric families when someone scrapes.
Gauges that mirror worker records (in-flight, states, health, breakers) are read by `ClusterCollector`.
Label values must come from small fixed sets (route paths, status codes, worker addresses, policy names,
reason words): never from request content.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence, Sized

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from gllm.balancer.cluster import Cluster
from gllm.balancer.cluster_collector import ClusterCollector
from gllm.balancer.stats import StatsWindow

# Latencies of LLM requests: a cached short answer takes milliseconds, a long generation minutes.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
# Model loads can take many minutes; release is usually seconds.
OPERATION_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
)
# Length of the prompt prefix a worker is believed to have cached (characters or tokens, as the policy counts).
PREFIX_BUCKETS = (0.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0)
# The classic text format (what generate_latest writes with its default escaping), understood by every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def status_class(status: int) -> str:
    """'2xx', '4xx', '5xx', ...; anything else (0: no response at all) is 'error'."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "error"


class HistogramCell:
    """Bucket counts and sum of one labelled histogram; `observe` is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value (Prometheus buckets are `le`: a value equal to a bound falls in it)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def merge(self, other: HistogramCell) -> None:
        """Add another cell with the same bounds."""
        for i, count in enumerate(other.counts):
            self.counts[i] += count
        self.sum += other.sum

    def cumulative(self) -> list[tuple[str, float]]:
        """Buckets as prometheus-client wants them: (le, cumulative count), ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
        return out


class _RouteCell:
    __slots__ = ("chunks", "duration", "requests", "ttfb")

    def __init__(self) -> None:
        self.requests = 0
        self.chunks = 0
        self.ttfb = HistogramCell(LATENCY_BUCKETS)
        self.duration = HistogramCell(LATENCY_BUCKETS)


class _WorkerCell:
    __slots__ = ("duration", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = HistogramCell(LATENCY_BUCKETS)


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _histograms(
    name: str, documentation: str, labels: list[str], cells: Iterable[tuple[Sequence[str], HistogramCell]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, cell in cells:
        family.add_metric(list(values), cell.cumulative(), cell.sum)
    return family


def _counters(
    name: str, documentation: str, labels: list[str], values: Iterable[tuple[Sequence[str], float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


class BalancerMetrics:
    """All metrics of one balancer on its own CollectorRegistry; `request_done` also feeds a StatsWindow."""

    def __init__(
        self, cluster: Cluster, policy: str, stats: StatsWindow | None = None, queue: Sized | None = None
    ) -> None:
        self.stats = stats
        self._queue = queue  # the backpressure queue, measured at scrape time (else queue_length() sets it)
        self._routes: dict[tuple[str, int], _RouteCell] = {}
        self._workers: dict[tuple[str, int], _WorkerCell] = {}
        self._retries: dict[str, int] = {}
        self._failovers: dict[str, int] = {}
        self._timeouts: dict[str, int] = {}
        self._decisions: dict[str, int] = {}
        self._prefix_hits: dict[str, HistogramCell] = {}
        self._queue_length = 0
        self._queue_wait = HistogramCell(LATENCY_BUCKETS)
        self._queue_rejected = 0
        self._operations: dict[tuple[str, str], HistogramCell] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.registry.register(ClusterCollector(cluster, policy))

    # -- per request ---------------------------------------------------------------------------------------------

    def request_done(
        self,
        route: str,
        status: int,
        worker: str | None,
        ttfb_s: float | None,
        total_s: float,
        chunks: int = 0,
        error: str | None = None,
    ) -> None:
        """Count one answered request (`worker` None: no worker took it; `error`: why it failed)."""
        cell = self._routes.get((route, status))
        if cell is None:
            cell = self._routes[(route, status)] = _RouteCell()
        cell.requests += 1
        cell.chunks += chunks
        cell.duration.observe(total_s)
        if ttfb_s is not None:
            cell.ttfb.observe(ttfb_s)
        if worker is not None:
            per = self._workers.get((worker, status))
            if per is None:
                per = self._workers[(worker, status)] = _WorkerCell()
            per.requests += 1
            per.duration.observe(total_s)
        stats = self.stats
        if stats is not None:
            failed = error is not None or status >= 500 or status < 100
            stats.record(worker, status, total_s, ttfb_s, failed)
            if failed:
                stats.error(route, status, worker, error or f"HTTP {status}")

    def retry(self, reason: str) -> None:
        """A request is tried again on another worker (`reason`: connect, status_503, ...)."""
        _bump(self._retries, reason)

    def failover(self, kind: str) -> None:
        """A request moved to another worker (`kind`: connect, mid_stream, ...)."""
        _bump(self._failovers, kind)

    def timeout(self, kind: str) -> None:
        """An upstream call timed out (`kind`: connect, first_byte, idle, total, ...)."""
        _bump(self._timeouts, kind)

    def route_decision(self, policy: str, prefix_hit_len: int | None = None) -> None:
        """The policy chose a worker; the prefix policy also says how long a cached prefix it matched."""
        _bump(self._decisions, policy)
        if prefix_hit_len is not None:
            cell = self._prefix_hits.get(policy)
            if cell is None:
                cell = self._prefix_hits[policy] = HistogramCell(PREFIX_BUCKETS)
            cell.observe(prefix_hit_len)

    def queue_length(self, length: int) -> None:
        """The backpressure queue now holds `length` requests (not needed when a queue was given)."""
        self._queue_length = length

    def queue_wait(self, seconds: float) -> None:
        """A queued request got a worker after waiting `seconds`."""
        self._queue_wait.observe(seconds)

    def queue_rejected(self) -> None:
        """A request was refused by the backpressure queue (full, or waited too long)."""
        self._queue_rejected += 1

    # -- rare ----------------------------------------------------------------------------------------------------

    def operation(self, name: str, outcome: str, duration_s: float) -> None:
        """A cluster operation finished (`name`: load_model, release_gpus; `outcome`: ok, failed)."""
        cell = self._operations.get((name, outcome))
        if cell is None:
            cell = self._operations[(name, outcome)] = HistogramCell(OPERATION_BUCKETS)
        cell.observe(duration_s)

    def forget_worker(self, worker: str) -> None:
        """Drop a removed worker's series, so that departed workers do not linger in every scrape."""
        for key in [key for key in self._workers if key[0] == worker]:
            del self._workers[key]

    # -- scraping ------------------------------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric of this balancer in Prometheus text format (serve with CONTENT_TYPE)."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """The hot-path metrics as prometheus-client families (called by the registry on a scrape)."""
        by_class: dict[tuple[str, str], int] = {}
        chunks: dict[str, int] = {}
        ttfb: dict[str, HistogramCell] = {}
        duration: dict[str, HistogramCell] = {}
        for (route, status), cell in self._routes.items():
            key = (route, status_class(status))
            by_class[key] = by_class.get(key, 0) + cell.requests
            chunks[route] = chunks.get(route, 0) + cell.chunks
            ttfb.setdefault(route, HistogramCell(LATENCY_BUCKETS)).merge(cell.ttfb)
            duration.setdefault(route, HistogramCell(LATENCY_BUCKETS)).merge(cell.duration)
        yield _counters(
            "gllm_requests", "Requests answered, by route and status class.", ["route", "status_class"],
            sorted(by_class.items()),
        )  # fmt: skip
        yield _histograms(
            "gllm_request_ttfb_seconds", "Time from receiving a request to sending its first response byte.",
            ["route"], (((route,), cell) for route, cell in sorted(ttfb.items())),
        )  # fmt: skip
        yield _histograms(
            "gllm_request_duration_seconds", "Time from receiving a request to sending its last response byte.",
            ["route"], (((route,), cell) for route, cell in sorted(duration.items())),
        )  # fmt: skip
        yield _counters(
            "gllm_stream_chunks", "Streamed response pieces relayed to clients.", ["route"],
            (((route,), count) for route, count in sorted(chunks.items())),
        )  # fmt: skip
        yield from self._collect_workers()
        yield from self._collect_events()

    def _collect_workers(self) -> Iterator[Metric]:
        by_class: dict[tuple[str, str], int] = {}
        duration: dict[str, HistogramCell] = {}
        for (worker, status), cell in self._workers.items():
            key = (worker, status_class(status))
            by_class[key] = by_class.get(key, 0) + cell.requests
            duration.setdefault(worker, HistogramCell(LATENCY_BUCKETS)).merge(cell.duration)
        yield _counters(
            "gllm_worker_requests", "Requests answered by each worker, by status class.",
            ["worker", "status_class"], sorted(by_class.items()),
        )  # fmt: skip
        yield _histograms(
            "gllm_worker_request_duration_seconds", "End-to-end latency of the requests each worker answered.",
            ["worker"], (((worker,), cell) for worker, cell in sorted(duration.items())),
        )  # fmt: skip

    def _collect_events(self) -> Iterator[Metric]:
        for name, documentation, label, counts in (
            ("gllm_retries", "Attempts retried on another worker, by reason.", "reason", self._retries),
            (
                "gllm_failovers",
                "Requests moved to another worker (connect, mid_stream, ...).",
                "kind",
                self._failovers,
            ),
            (
                "gllm_timeouts",
                "Upstream timeouts (connect, first_byte, idle, total, ...).",
                "kind",
                self._timeouts,
            ),
            ("gllm_routing_decisions", "Workers chosen, by routing policy.", "policy", self._decisions),
        ):
            yield _counters(name, documentation, [label], (((key,), n) for key, n in sorted(counts.items())))
        yield _histograms(
            "gllm_routing_prefix_hit_length", "Cached prefix length the prefix policy routed on.", ["policy"],
            (((policy,), cell) for policy, cell in sorted(self._prefix_hits.items())),
        )  # fmt: skip
        length = len(self._queue) if self._queue is not None else self._queue_length
        yield GaugeMetricFamily(
            "gllm_queue_length", "Requests waiting for a worker (backpressure).", value=length
        )
        yield _histograms(
            "gllm_queue_wait_seconds", "Time requests waited in the queue.", [], [((), self._queue_wait)]
        )
        yield _counters(
            "gllm_queue_rejected", "Requests refused by the queue (full, or waited too long).", [],
            [((), self._queue_rejected)],
        )  # fmt: skip
        operations = sorted(self._operations.items())
        yield _counters(
            "gllm_operations", "Cluster operations (load_model, release_gpus) by outcome.",
            ["operation", "outcome"], ((key, sum(cell.counts)) for key, cell in operations),
        )  # fmt: skip
        yield _histograms(
            "gllm_operation_duration_seconds", "Duration of cluster operations.", ["operation", "outcome"],
            operations,
        )  # fmt: skip
