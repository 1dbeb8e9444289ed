"""BalancerMetrics and the cluster collector: values, labels, exposition validity, isolation."""

from __future__ import annotations

import random

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gllm import __version__
from gllm.balancer.breaker import BreakerState
from gllm.balancer.cluster import Cluster
from gllm.balancer.metrics import BalancerMetrics, HistogramCell, status_class
from gllm.balancer.policies import make_policy
from gllm.balancer.registry import Registry, WorkerState
from gllm.balancer.stats import StatsWindow

A = "http://10.0.0.1:8000"
B = "http://10.0.0.2:8000"


def make_cluster() -> Cluster:
    return Cluster(Registry(), make_policy("least_busy", 5, random.Random(0)))


def samples(metrics: BalancerMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by prometheus-client's own parser (so the text must be valid)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: BalancerMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


@pytest.mark.unit
class TestStatusClass:
    """Status codes group into classes."""

    @pytest.mark.parametrize(
        ("status", "klass"),
        [(200, "2xx"), (204, "2xx"), (404, "4xx"), (503, "5xx"), (0, "error"), (700, "error")],
    )
    def test_classes(self, status: int, klass: str) -> None:
        """Each status falls in its class; no answer at all is 'error'."""
        assert status_class(status) == klass


@pytest.mark.unit
class TestHistogramCell:
    """The hot-path histogram follows Prometheus' `le` buckets."""

    def test_le_buckets(self) -> None:
        """A value equal to a bound counts in that bucket; cumulative counts end with +Inf."""
        cell = HistogramCell((0.1, 1.0))
        for v in (0.05, 0.1, 0.5, 1.0, 5.0):
            cell.observe(v)
        assert cell.cumulative() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
        assert cell.sum == pytest.approx(6.65)


@pytest.mark.unit
class TestRequestDone:
    """Per-request counters and histograms."""

    def test_counts_by_route_status_and_worker(self) -> None:
        """Requests count by route and status class, and by worker; chunks add up."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        for _ in range(3):
            metrics.request_done("/chat/completions", 200, A, 0.02, 0.3, chunks=5)
        metrics.request_done("/chat/completions", 201, B, 0.02, 0.3)
        metrics.request_done("/completions", 502, B, None, 1.5, error="worker failed")
        metrics.request_done("/completions", 503, None, None, 0.001)
        assert value(metrics, "gllm_requests_total", route="/chat/completions", status_class="2xx") == 4
        assert value(metrics, "gllm_requests_total", route="/completions", status_class="5xx") == 2
        assert value(metrics, "gllm_worker_requests_total", worker=A, status_class="2xx") == 3
        assert value(metrics, "gllm_worker_requests_total", worker=B, status_class="2xx") == 1
        assert value(metrics, "gllm_worker_requests_total", worker=B, status_class="5xx") == 1
        assert value(metrics, "gllm_stream_chunks_total", route="/chat/completions") == 15
        assert value(metrics, "gllm_stream_chunks_total", route="/completions") == 0

    def test_latency_histograms(self) -> None:
        """TTFB counts only answered requests; durations land in their buckets."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.request_done("/completions", 200, A, 0.004, 0.004)
        metrics.request_done("/completions", 200, A, 0.2, 45.0)
        metrics.request_done("/completions", 504, A, None, 700.0)
        route = {"route": "/completions"}
        assert value(metrics, "gllm_request_ttfb_seconds_count", **route) == 2
        assert value(metrics, "gllm_request_duration_seconds_count", **route) == 3
        assert value(metrics, "gllm_request_duration_seconds_bucket", le="0.005", **route) == 1
        assert value(metrics, "gllm_request_duration_seconds_bucket", le="60.0", **route) == 2
        assert value(metrics, "gllm_request_duration_seconds_bucket", le="600.0", **route) == 2
        assert value(metrics, "gllm_request_duration_seconds_bucket", le="+Inf", **route) == 3
        assert value(metrics, "gllm_request_duration_seconds_sum", **route) == pytest.approx(745.004)
        assert value(metrics, "gllm_worker_request_duration_seconds_count", worker=A) == 3

    def test_feeds_the_stats_window(self) -> None:
        """With a window, requests and failures reach it too (5xx and explicit errors count as errors)."""
        stats = StatsWindow()
        metrics = BalancerMetrics(make_cluster(), "least_busy", stats)
        metrics.request_done("/completions", 200, A, 0.01, 0.1)
        metrics.request_done("/completions", 200, A, 0.01, 0.1, error="stream broke after 3 chunks")
        metrics.request_done("/completions", 502, B, None, 0.1)
        metrics.request_done("/completions", 404, B, None, 0.1)
        total = stats.recent(60)["total"]
        assert total["requests"] == 4
        assert total["errors"] == 2
        messages = [e["message"] for e in stats.recent_errors()]
        assert messages == ["HTTP 502", "stream broke after 3 chunks"]

    def test_forget_worker(self) -> None:
        """A removed worker's series leave the scrape."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.request_done("/completions", 200, A, 0.01, 0.1)
        metrics.request_done("/completions", 200, B, 0.01, 0.1)
        metrics.forget_worker(A)
        scraped = samples(metrics)
        assert not any(dict(labels).get("worker") == A for _, labels in scraped)
        assert value(metrics, "gllm_worker_requests_total", worker=B, status_class="2xx") == 1


@pytest.mark.unit
class TestEvents:
    """Retries, failovers, timeouts, routing decisions, queue and operations."""

    def test_event_counters(self) -> None:
        """Each event method bumps its own labelled counter."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.retry("connect")
        metrics.retry("connect")
        metrics.retry("status_503")
        metrics.failover("mid_stream")
        metrics.timeout("first_byte")
        metrics.route_decision("least_busy")
        metrics.route_decision("prefix", prefix_hit_len=300)
        metrics.route_decision("prefix", prefix_hit_len=0)
        assert value(metrics, "gllm_retries_total", reason="connect") == 2
        assert value(metrics, "gllm_retries_total", reason="status_503") == 1
        assert value(metrics, "gllm_failovers_total", kind="mid_stream") == 1
        assert value(metrics, "gllm_timeouts_total", kind="first_byte") == 1
        assert value(metrics, "gllm_routing_decisions_total", policy="prefix") == 2
        assert value(metrics, "gllm_routing_prefix_hit_length_count", policy="prefix") == 2
        assert value(metrics, "gllm_routing_prefix_hit_length_bucket", policy="prefix", le="0.0") == 1
        assert value(metrics, "gllm_routing_prefix_hit_length_sum", policy="prefix") == 300
        assert ("gllm_routing_prefix_hit_length_count", frozenset({("policy", "least_busy")})) not in samples(
            metrics
        )

    def test_queue(self) -> None:
        """Queue length is a gauge; waits a histogram; rejections a counter."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.queue_length(7)
        metrics.queue_wait(0.3)
        metrics.queue_rejected()
        assert value(metrics, "gllm_queue_length") == 7
        assert value(metrics, "gllm_queue_wait_seconds_count") == 1
        assert value(metrics, "gllm_queue_rejected_total") == 1

    def test_queue_read_at_scrape(self) -> None:
        """Given the queue itself, its length is read when scraped."""
        queue = [object(), object()]
        metrics = BalancerMetrics(make_cluster(), "least_busy", queue=queue)
        assert value(metrics, "gllm_queue_length") == 2
        queue.pop()
        assert value(metrics, "gllm_queue_length") == 1

    def test_operations(self) -> None:
        """Operations count by name and outcome, with their durations."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.operation("load_model", "ok", 42.0)
        metrics.operation("load_model", "failed", 3.0)
        metrics.operation("release_gpus", "ok", 1.0)
        assert value(metrics, "gllm_operations_total", operation="load_model", outcome="ok") == 1
        assert value(metrics, "gllm_operations_total", operation="load_model", outcome="failed") == 1
        assert (
            value(metrics, "gllm_operation_duration_seconds_sum", operation="load_model", outcome="ok") == 42
        )


@pytest.mark.unit
class TestClusterCollector:
    """Worker gauges read from the records at scrape time."""

    def test_worker_gauges(self) -> None:
        """In-flight, state, health, breaker, ejections and per-model counts follow the records."""
        cluster = make_cluster()
        cluster.model = "org/model-a"
        a, _ = cluster.registry.add(A)
        b, _ = cluster.registry.add(B)
        a.in_flight, a.state, a.model, a.healthy = 3, WorkerState.READY, "org/model-a", True
        b.state, b.model, b.healthy = WorkerState.LOADING, "org/model-a", False
        b.ejected, b.ejections = True, 2
        b.breaker.state = BreakerState.OPEN
        metrics = BalancerMetrics(cluster, "least_busy")
        assert value(metrics, "gllm_worker_in_flight", worker=A) == 3
        assert value(metrics, "gllm_worker_state", worker=A, state="ready") == 1
        assert value(metrics, "gllm_worker_state", worker=A, state="loading") == 0
        assert value(metrics, "gllm_worker_health", worker=A, state="healthy") == 1
        assert value(metrics, "gllm_worker_health", worker=B, state="ejected") == 1
        assert value(metrics, "gllm_worker_health", worker=B, state="unhealthy") == 0
        assert value(metrics, "gllm_worker_breaker_state", worker=A, state="closed") == 1
        assert value(metrics, "gllm_worker_breaker_state", worker=B, state="open") == 1
        assert value(metrics, "gllm_worker_ejections_total", worker=B) == 2
        assert value(metrics, "gllm_workers", model="org/model-a", state="ready") == 1
        assert value(metrics, "gllm_workers", model="org/model-a", state="loading") == 1
        assert (
            value(
                metrics, "gllm_balancer_info", model="org/model-a", policy="least_busy", version=__version__
            )
            == 1
        )
        a.in_flight = 0
        assert value(metrics, "gllm_worker_in_flight", worker=A) == 0  # read live at every scrape

    def test_unknown_health(self) -> None:
        """A worker never probed has health 'unknown'."""
        cluster = make_cluster()
        cluster.registry.add(A)
        metrics = BalancerMetrics(cluster, "least_busy")
        assert value(metrics, "gllm_worker_health", worker=A, state="unknown") == 1
        assert value(metrics, "gllm_workers", model="none", state="unknown") == 1


@pytest.mark.unit
class TestIsolation:
    """No global registry, no shared state between balancers."""

    def test_instances_are_independent(self) -> None:
        """Two balancers' metrics do not see each other's traffic, nor touch the default registry."""
        first = BalancerMetrics(make_cluster(), "least_busy")
        second = BalancerMetrics(make_cluster(), "least_busy")
        first.request_done("/completions", 200, A, 0.01, 0.1)
        assert value(first, "gllm_requests_total", route="/completions", status_class="2xx") == 1
        assert (
            "gllm_requests_total",
            frozenset({("route", "/completions"), ("status_class", "2xx")}),
        ) not in samples(second)
        assert (
            REGISTRY.get_sample_value("gllm_requests_total", {"route": "/completions", "status_class": "2xx"})
            is None
        )

    def test_no_created_series(self) -> None:
        """The exposition carries no `_created` noise, and every family has HELP and TYPE."""
        metrics = BalancerMetrics(make_cluster(), "least_busy")
        metrics.request_done("/completions", 200, A, 0.01, 0.1)
        text = metrics.render().decode()
        assert "_created" not in text
        families = list(text_string_to_metric_families(text))
        assert {f.name for f in families} >= {
            "gllm_requests",
            "gllm_request_ttfb_seconds",
            "gllm_request_duration_seconds",
            "gllm_worker_in_flight",
            "gllm_operations",
        }
        assert all(f.documentation for f in families)
