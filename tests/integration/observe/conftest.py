"""Fixtures for observability tests: the test balancer's metrics and stats."""

from __future__ import annotations

import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.observe import Observed, observe


@pytest.fixture
def observed(balancer: BalancerThread) -> Observed:
    """The test balancer's metrics and stats window (GET /metrics, /stats and /dashboard are served)."""
    return observe(balancer)


@pytest.fixture
def wired(observed: Observed) -> Observed:
    """Like `observed`, for tests that need the balancer's hot path to feed the metrics."""
    if not observed.wired:
        pytest.skip("BalancerApp does not create BalancerMetrics/StatsWindow yet (app.metrics, app.stats)")
    return observed
