"""Scrape-time metrics read from the worker records: the hot path pays nothing for them.

In-flight counts, worker states, health and circuit-breaker states are already kept on each `Worker`; this
collector turns them into Prometheus families only when someone scrapes GET /metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from gllm import __version__
from gllm.balancer.cluster import Cluster
from gllm.balancer.registry import Worker, WorkerState

WORKER_STATES = tuple(state.value for state in WorkerState)
HEALTH_STATES = ("healthy", "unhealthy", "ejected", "unknown")
BREAKER_STATES = ("closed", "open", "half_open")
NO_MODEL = "none"


def label_of(value: Any) -> str:
    """A label value for an enum member, a string or anything else (`None` -> "unknown")."""
    if value is None:
        return "unknown"
    raw = getattr(value, "value", value)
    return str(raw).lower()


def health_of(worker: Worker) -> str:
    """The worker's health as a label: ejected (out of rotation), else from its last probe (`healthy`)."""
    if getattr(worker, "ejected", False):
        return "ejected"
    health = getattr(worker, "health", None)
    if health is not None:
        return label_of(getattr(health, "state", health))
    healthy = worker.healthy
    return "unknown" if healthy is None else ("healthy" if healthy else "unhealthy")


def breaker_of(worker: Worker) -> str | None:
    """The worker's circuit-breaker state as a label, or None when the worker has no breaker."""
    breaker = getattr(worker, "breaker", None)
    if breaker is None:
        return None
    return label_of(getattr(breaker, "state", breaker))


def _state_set(
    name: str, documentation: str, rows: Iterable[tuple[str, str]], known: Sequence[str]
) -> GaugeMetricFamily:
    """One gauge per (worker, state): 1 for the worker's current state, 0 for the other known states."""
    family = GaugeMetricFamily(name, documentation, labels=["worker", "state"])
    for worker, current in rows:
        for state in (*known, *(() if current in known else (current,))):
            family.add_metric([worker, state], 1.0 if state == current else 0.0)
    return family


class ClusterCollector:
    """Collects the per-worker gauges of one balancer's cluster at scrape time."""

    def __init__(self, cluster: Cluster, policy: str) -> None:
        self._cluster = cluster
        self._policy = policy

    def collect(self) -> Iterable[Metric]:
        """Build the families from the current worker records."""
        workers = self._cluster.registry.all()
        info = GaugeMetricFamily(
            "gllm_balancer_info",
            "The balancer: version, routing policy and cluster model (always 1).",
            labels=["version", "policy", "model"],
        )
        info.add_metric([__version__, self._policy, self._cluster.model or NO_MODEL], 1.0)
        yield info

        in_flight = GaugeMetricFamily(
            "gllm_worker_in_flight", "Requests open on the worker through this balancer.", labels=["worker"]
        )
        for worker in workers:
            in_flight.add_metric([worker.address], float(worker.in_flight))
        yield in_flight

        yield _state_set(
            "gllm_worker_state",
            "The worker's engine state as the worker reports it (1 = current state).",
            ((w.address, w.state.value) for w in workers),
            WORKER_STATES,
        )
        yield _state_set(
            "gllm_worker_health",
            "The worker's health as the balancer's checks see it (1 = current state).",
            ((w.address, health_of(w)) for w in workers),
            HEALTH_STATES,
        )
        breakers = [(w.address, state) for w in workers if (state := breaker_of(w)) is not None]
        yield _state_set(
            "gllm_worker_breaker_state",
            "The worker's circuit breaker (1 = current state).",
            breakers,
            BREAKER_STATES,
        )

        ejections = CounterMetricFamily(
            "gllm_worker_ejections",
            "Times the worker was taken out of rotation after failed health checks.",
            labels=["worker"],
        )
        for worker in workers:
            count = getattr(worker, "ejections", None)
            if isinstance(count, int):
                ejections.add_metric([worker.address], float(count))
        yield ejections

        per_model = GaugeMetricFamily(
            "gllm_workers", "Registered workers by model and state.", labels=["model", "state"]
        )
        counts = Counter((w.model or NO_MODEL, w.state.value) for w in workers)
        for (model, state), count in sorted(counts.items()):
            per_model.add_metric([model, state], float(count))
        yield per_model
