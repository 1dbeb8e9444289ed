"""The cluster as `gllm status` shows it: fetched from GET /workers and GET /stats, drawn as a rich table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gllm.client import GLLM, RemoteError, WorkerStatus

STATE_STYLES = {
    "ready": "green",
    "loading": "yellow",
    "stopping": "yellow",
    "idle": "dim",
    "released": "dim",
    "unknown": "dim",
    "failed": "bold red",
}
HEALTH_STYLES = {"healthy": "green", "unhealthy": "bold red", "ejected": "bold red", "unknown": "dim"}
BREAKER_STYLES = {"closed": "green", "half_open": "yellow", "open": "bold red"}
NONE = "-"  # shown where a figure is unknown
# The balancer's stats window summarised in one step: only the last-minute figures are needed here.
STATS_QUERY = "/stats?window=60&step=60"


@dataclass(frozen=True)
class ClusterView:
    """One snapshot: the workers and, when the balancer has GET /stats, its traffic figures."""

    balancer: str
    workers: list[WorkerStatus]
    stats: dict[str, Any] | None
    taken_at: float = field(default_factory=time.time)

    def worker_stats(self, address: str) -> dict[str, Any]:
        """The last-minute figures of one worker ({} when unknown)."""
        for row in (self.stats or {}).get("workers", []):
            if isinstance(row, dict) and row.get("address") == address:
                return row
        return {}


def fetch_view(client: GLLM, http: httpx.Client) -> ClusterView:
    """Read /workers (required) and /stats (optional: an older balancer has none)."""
    workers = client.workers()
    stats: dict[str, Any] | None = None
    try:
        response = http.get(client.server_address + STATS_QUERY, timeout=10.0)
    except httpx.TransportError:
        response = None
    if response is not None and response.status_code == 200:
        payload = response.json()
        stats = payload if isinstance(payload, dict) else None
    elif response is not None and response.status_code not in (404, 405):
        raise RemoteError(response.status_code, response.text[:200], method="GET", url=str(response.url))
    return ClusterView(client.server_address, workers, stats)


def health_label(worker: WorkerStatus) -> str:
    """healthy, unhealthy, ejected or unknown."""
    if worker.raw.get("ejected") is True:
        return "ejected"
    if worker.healthy is None:
        return "unknown"
    return "healthy" if worker.healthy else "unhealthy"


def _styled(value: str, styles: dict[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def _rate(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else NONE


def _latency(value: Any) -> str:
    if not isinstance(value, int | float):
        return NONE
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def render_view(view: ClusterView) -> RenderableType:
    """The table of workers with totals, under a line naming the cluster model and policy."""
    cluster = (view.stats or {}).get("cluster", {})
    totals = (view.stats or {}).get("totals", {})
    table = Table(
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
        show_footer=True,
        caption_justify="left",
    )
    ready = sum(1 for w in view.workers if w.state == "ready")
    table.add_column("worker", footer=f"{len(view.workers)} workers", no_wrap=True)
    table.add_column("state", footer=f"{ready} ready", no_wrap=True)
    table.add_column("model", overflow="ellipsis", no_wrap=True, min_width=8)
    table.add_column("health", no_wrap=True)
    table.add_column("breaker", no_wrap=True)
    in_flight = str(sum(w.in_flight for w in view.workers))
    table.add_column("in flight", justify="right", footer=in_flight, no_wrap=True)
    table.add_column("req/s", justify="right", footer=_rate(totals.get("requests_per_s")), no_wrap=True)
    table.add_column("p50", justify="right", footer=_latency(totals.get("latency_p50_ms")), no_wrap=True)
    for worker in view.workers:
        figures = view.worker_stats(worker.address)
        breaker = worker.raw.get("breaker")
        table.add_row(
            worker.address.split("://", 1)[-1],
            _styled(worker.state or "unknown", STATE_STYLES),
            worker.model or Text(NONE, style="dim"),
            _styled(health_label(worker), HEALTH_STYLES),
            _styled(str(breaker), BREAKER_STYLES) if breaker else Text(NONE, style="dim"),
            str(worker.in_flight),
            _rate(figures.get("requests_per_s")),
            _latency(figures.get("latency_p50_ms")),
        )
    header = Text.assemble(
        ("GLLM cluster ", "bold"),
        (view.balancer, "cyan"),
        "  model ",
        (str(cluster.get("model") or "none") if view.stats else "?", "bold"),
        "  policy ",
        (str(cluster.get("policy", "?")), "bold"),
    )
    table.caption = (
        f"last minute: p99 {_latency(totals.get('latency_p99_ms'))}, {totals.get('errors', NONE)} errors; "
        "req/s and p50 columns too"
    )
    parts: list[RenderableType] = [header, table]
    if view.stats is None:
        parts.append(Text("this balancer has no GET /stats: traffic figures are not available", style="dim"))
    if not view.workers:
        parts.append(Text("no workers registered", style="yellow"))
    parts.append(Text(time.strftime("updated %H:%M:%S", time.localtime(view.taken_at)), style="dim"))
    return Group(*parts)


def render_error(message: str, last: ClusterView | None) -> RenderableType:
    """What --watch shows while the balancer cannot be reached: the error above the last good view."""
    parts: list[RenderableType] = [Text(message, style="bold red")]
    if last is not None:
        parts.append(render_view(last))
    return Group(*parts)
