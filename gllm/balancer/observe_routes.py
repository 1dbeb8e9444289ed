"""Observability routes: GET /metrics (Prometheus), GET /stats (JSON for people and tools), GET /dashboard."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from gllm import __version__
from gllm.balancer.cluster import Cluster
from gllm.balancer.config import BalancerConfig
from gllm.balancer.dashboard import DashboardPage
from gllm.balancer.dashboard.page import CONTENT_TYPE as HTML
from gllm.balancer.metrics import CONTENT_TYPE as PROMETHEUS
from gllm.balancer.metrics import BalancerMetrics
from gllm.balancer.registry import WorkerState
from gllm.balancer.responses import send_error, send_json
from gllm.balancer.router import Router
from gllm.balancer.stats import StatsWindow
from gllm.http.server import HttpRequest, ResponseWriter

RECENT_SPAN_S = 60  # "over the last minute" in the per-worker and total figures


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter clamped to [low, high]; ValueError names a bad one."""
    raw = query.get(name)
    if not raw:
        return default
    try:
        value = int(raw[-1])
    except ValueError:
        raise ValueError(f"'{name}' must be a whole number of seconds, got {raw[-1][:40]!r}") from None
    return max(low, min(high, value))


def stats_payload(
    cluster: Cluster, stats: StatsWindow, policy: str, window_s: int | None = None, step_s: int = 1
) -> dict[str, Any]:
    """The JSON of GET /stats: the cluster, each worker (as /workers shows it, plus last-minute traffic),
    last-minute totals, chart series over the window and the recent errors."""
    workers = cluster.registry.all()
    recent = stats.recent(RECENT_SPAN_S)
    per_worker: dict[str, dict[str, Any]] = recent["workers"]
    idle = {"requests": 0, "errors": 0, "requests_per_s": 0.0, "latency_p50_ms": None, "latency_p99_ms": None}
    rows = []
    for worker in workers:
        row = worker.to_json()
        figures = per_worker.get(worker.address, idle)
        row.update({key: figures[key] for key in idle})
        rows.append(row)
    in_flight = sum(w.in_flight for w in workers)
    return {
        "time": round(time.time(), 3),
        "cluster": {
            "model": cluster.model,
            "policy": policy,
            "version": __version__,
            "uptime_s": round(time.time() - stats.started, 1),
            "workers": len(workers),
            "ready": sum(1 for w in workers if w.state is WorkerState.READY),
            "in_flight": in_flight,
        },
        "totals": {**recent["total"], "in_flight": in_flight, "span_s": recent["span_s"]},
        "workers": rows,
        "series": stats.series(window_s, step_s),
        "recent_errors": stats.recent_errors(),
    }


class ObserveRoutes:
    """`/metrics`, `/stats` and `/dashboard` of one balancer."""

    def __init__(
        self, cluster: Cluster, metrics: BalancerMetrics, stats: StatsWindow, config: BalancerConfig
    ) -> None:
        self._cluster = cluster
        self._metrics = metrics
        self._stats = stats
        self._policy = config.policy
        self._page: DashboardPage | None = (
            None  # built on first use: a broken install must not stop the balancer
        )

    def register(self, router: Router) -> None:
        """Add these routes to the router (open like /workers: they show no secrets and change nothing)."""
        router.add("GET", "/metrics", self.metrics)
        router.add("GET", "/stats", self.stats)
        router.add("GET", "/dashboard", self.dashboard)

    async def metrics(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """Prometheus text exposition."""
        writer.send(200, self._metrics.render(), PROMETHEUS.encode())

    async def stats(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """The stats window as JSON; `?window=S&step=S` choose the chart span and resolution."""
        query = parse_qs(request.query)
        try:
            window = _int_param(query, "window", self._stats.seconds - 1, 2, self._stats.seconds - 1)
            step = _int_param(query, "step", 1, 1, window)
        except ValueError as exc:
            send_error(writer, 400, str(exc), "invalid_parameter")
            return
        send_json(writer, 200, stats_payload(self._cluster, self._stats, self._policy, window, step))

    async def dashboard(self, request: HttpRequest, writer: ResponseWriter) -> None:
        """The live dashboard page."""
        if self._page is None:
            try:
                self._page = DashboardPage()
            except (OSError, ValueError) as exc:
                send_error(writer, 500, f"The dashboard is not available: {exc}", "dashboard_missing")
                return
        writer.send(200, self._page.body, HTML, self._page.headers)
