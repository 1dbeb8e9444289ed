"""GET /stats' JSON, built from the cluster and the stats window."""

from __future__ import annotations

import random

import orjson
import pytest

from gllm.balancer.cluster import Cluster
from gllm.balancer.observe_routes import _int_param, stats_payload
from gllm.balancer.policies import make_policy
from gllm.balancer.registry import Registry, WorkerState
from gllm.balancer.stats import StatsWindow

A = "http://10.0.0.1:8000"
B = "http://10.0.0.2:8000"


@pytest.mark.unit
class TestStatsPayload:
    """The payload joins each worker's record with its last-minute traffic."""

    def test_shape_and_join(self) -> None:
        """Workers carry /workers' fields plus traffic; the cluster block counts ready workers and in-flight."""
        cluster = Cluster(Registry(), make_policy("least_busy", 5, random.Random(0)))
        cluster.model = "m"
        a, _ = cluster.registry.add(A)
        b, _ = cluster.registry.add(B)
        a.state, a.in_flight = WorkerState.READY, 2
        b.state, b.in_flight = WorkerState.LOADING, 0
        stats = StatsWindow()
        for _ in range(4):
            stats.record(A, 200, 0.1, 0.01, False)
        stats.error("/completions", 502, A, "boom")
        payload = stats_payload(cluster, stats, "least_busy", 10, 2)
        orjson.dumps(payload)  # serialisable as the route sends it
        assert payload["cluster"]["model"] == "m"
        assert payload["cluster"]["policy"] == "least_busy"
        assert payload["cluster"]["workers"] == 2
        assert payload["cluster"]["ready"] == 1
        assert payload["cluster"]["in_flight"] == 2
        rows = {row["address"]: row for row in payload["workers"]}
        assert rows[A]["requests"] == 4
        assert rows[A]["state"] == "ready"
        assert rows[A]["in_flight"] == 2
        assert rows[A]["latency_p50_ms"] == pytest.approx(100, rel=0.1)
        assert rows[B]["requests"] == 0
        assert rows[B]["latency_p50_ms"] is None
        assert payload["totals"]["requests"] == 4
        assert payload["totals"]["in_flight"] == 2
        assert payload["series"]["step_s"] == 2
        assert len(payload["series"]["t"]) == 5
        assert payload["recent_errors"][0]["message"] == "boom"


@pytest.mark.unit
class TestQueryParameters:
    """?window= and ?step= are whole seconds, clamped to what the window holds."""

    def test_default_and_clamp(self) -> None:
        """Missing gives the default; out-of-range values are clamped."""
        assert _int_param({}, "window", 299, 2, 299) == 299
        assert _int_param({"window": ["100000"]}, "window", 299, 2, 299) == 299
        assert _int_param({"step": ["0"]}, "step", 1, 1, 60) == 1

    def test_garbage(self) -> None:
        """A value that is not a number is refused with a message naming it."""
        with pytest.raises(ValueError, match="'step' must be a whole number"):
            _int_param({"step": ["abc"]}, "step", 1, 1, 60)
