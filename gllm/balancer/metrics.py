"""The balancer's Prometheus metrics: one registry per balancer, cheap calls for the hot path.

Every method called per request is O(1): label children are resolved once and cached in plain dicts
(prometheus-client's own label lookup validates and hashes the label values on every call). Gauges that
mirror worker records (in-flight, states, health, breakers) are read at scrape time by `ClusterCollector`.
Label values must come from small fixed sets (route paths, status classes, worker addresses, policy names,
reason words): never from request content.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric

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
PREFIX_BUCKETS = (0, 16, 64, 256, 1024, 4096, 16384, 65536)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "error")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def status_class(status: int) -> str:
    """'2xx', '4xx', '5xx', ...; 0 (no response at all) is 'error'."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "error"


class _WithoutCreated:
    """The registry's families without the `_created` timestamps (noise for every counter and histogram)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class BalancerMetrics:
    """All metrics of one balancer, on its own CollectorRegistry; optionally feeds a StatsWindow too."""

    def __init__(self, cluster: Cluster, policy: str, stats: StatsWindow | None = None) -> None:
        self.registry = CollectorRegistry()
        self.stats = stats
        r = self.registry
        self._requests = Counter(
            "gllm_requests",
            "Requests answered, by route and status class.",
            ["route", "status_class"],
            registry=r,
        )
        self._worker_requests = Counter(
            "gllm_worker_requests",
            "Requests answered by each worker, by status class.",
            ["worker", "status_class"],
            registry=r,
        )
        self._ttfb = Histogram(
            "gllm_request_ttfb_seconds",
            "Time from receiving a request to sending its first response byte.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._duration = Histogram(
            "gllm_request_duration_seconds",
            "Time from receiving a request to sending its last response byte.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._worker_duration = Histogram(
            "gllm_worker_request_duration_seconds",
            "End-to-end latency of the requests each worker answered.",
            ["worker"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._chunks = Counter(
            "gllm_stream_chunks", "Streamed response pieces relayed to clients.", ["route"], registry=r
        )
        self._retries = Counter("gllm_retries", "Requests retried on another worker.", ["reason"], registry=r)
        self._failovers = Counter(
            "gllm_failovers",
            "Requests moved to another worker (kind: connect, mid_stream, ...).",
            ["kind"],
            registry=r,
        )
        self._timeouts = Counter(
            "gllm_timeouts",
            "Upstream timeouts (kind: connect, first_byte, idle, total, ...).",
            ["kind"],
            registry=r,
        )
        self._queue_length = Gauge(
            "gllm_queue_length", "Requests waiting for a worker (backpressure).", registry=r
        )
        self._queue_wait = Histogram(
            "gllm_queue_wait_seconds",
            "Time requests waited in the queue.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._queue_rejected = Counter(
            "gllm_queue_rejected",
            "Requests refused because the queue was full or waited too long.",
            registry=r,
        )
        self._decisions = Counter(
            "gllm_routing_decisions", "Workers chosen, by routing policy.", ["policy"], registry=r
        )
        self._prefix_hit = Histogram(
            "gllm_routing_prefix_hit_length",
            "Cached prefix length the prefix policy routed on.",
            ["policy"],
            buckets=PREFIX_BUCKETS,
            registry=r,
        )
        self._operations = Counter(
            "gllm_operations",
            "Cluster operations (load_model, release_gpus).",
            ["operation", "outcome"],
            registry=r,
        )
        self._operation_duration = Histogram(
            "gllm_operation_duration_seconds",
            "Duration of cluster operations.",
            ["operation", "outcome"],
            buckets=OPERATION_BUCKETS,
            registry=r,
        )
        r.register(ClusterCollector(cluster, policy))
        self._exposed = _WithoutCreated(r)
        # Cached label children (see the module docstring).
        self._route_children: dict[tuple[str, int], tuple[Counter, Histogram, Histogram, Counter]] = {}
        self._worker_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._simple: dict[tuple[str, str], Counter] = {}
        self._policy_children: dict[str, tuple[Counter, Histogram]] = {}

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
        children = self._route_children.get((route, status))
        if children is None:
            children = self._route_children[(route, status)] = (
                self._requests.labels(route, status_class(status)),
                self._ttfb.labels(route),
                self._duration.labels(route),
                self._chunks.labels(route),
            )
        requests, ttfb, duration, relayed = children
        requests.inc()
        duration.observe(total_s)
        if ttfb_s is not None:
            ttfb.observe(ttfb_s)
        if chunks:
            relayed.inc(chunks)
        if worker is not None:
            per = self._worker_children.get((worker, status))
            if per is None:
                per = self._worker_children[(worker, status)] = (
                    self._worker_requests.labels(worker, status_class(status)),
                    self._worker_duration.labels(worker),
                )
            per[0].inc()
            per[1].observe(total_s)
        stats = self.stats
        if stats is not None:
            failed = error is not None or status >= 500 or status == 0
            stats.record(worker, status, total_s, ttfb_s, failed)
            if failed:
                stats.error(route, status, worker, error or f"HTTP {status}")

    def _count(self, metric: Counter, name: str, value: str, amount: float = 1.0) -> None:
        child = self._simple.get((name, value))
        if child is None:
            child = self._simple[(name, value)] = metric.labels(value)
        child.inc(amount)

    def retry(self, reason: str) -> None:
        """A request is tried again on another worker (`reason`: connect, status_503, ...)."""
        self._count(self._retries, "retry", reason)

    def failover(self, kind: str) -> None:
        """A request moved to another worker (`kind`: connect, mid_stream, ...)."""
        self._count(self._failovers, "failover", kind)

    def timeout(self, kind: str) -> None:
        """An upstream call timed out (`kind`: connect, first_byte, idle, total, ...)."""
        self._count(self._timeouts, "timeout", kind)

    def route_decision(self, policy: str, prefix_hit_len: int | None = None) -> None:
        """The policy chose a worker; the prefix policy also says how long a cached prefix it matched."""
        children = self._policy_children.get(policy)
        if children is None:
            children = self._policy_children[policy] = (
                self._decisions.labels(policy),
                self._prefix_hit.labels(policy),
            )
        children[0].inc()
        if prefix_hit_len is not None:
            children[1].observe(prefix_hit_len)

    def queue_length(self, length: int) -> None:
        """The backpressure queue now holds `length` requests."""
        self._queue_length.set(length)

    def queue_wait(self, seconds: float) -> None:
        """A queued request got a worker after waiting `seconds`."""
        self._queue_wait.observe(seconds)

    def queue_rejected(self) -> None:
        """A request was refused by the backpressure queue."""
        self._queue_rejected.inc()

    # -- rare ----------------------------------------------------------------------------------------------------

    def operation(self, name: str, outcome: str, duration_s: float) -> None:
        """A cluster operation finished (`name`: load_model, release_gpus; `outcome`: ok, failed, partial)."""
        self._operations.labels(name, outcome).inc()
        self._operation_duration.labels(name, outcome).observe(duration_s)

    def forget_worker(self, worker: str) -> None:
        """Drop a removed worker's labelled series, so that departed workers do not linger forever."""
        for key in [k for k in self._worker_children if k[0] == worker]:
            del self._worker_children[key]
        for klass in STATUS_CLASSES:
            _remove(self._worker_requests, worker, klass)
        _remove(self._worker_duration, worker)

    def render(self) -> bytes:
        """The metrics in Prometheus text format (serve with CONTENT_TYPE)."""
        return generate_latest(self._exposed)


def _remove(metric: Counter | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
