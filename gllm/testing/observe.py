"""Observability in tests: a balancer's metrics and stats window, scrapes, and real sim workers in a thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gllm.balancer.metrics import BalancerMetrics
from gllm.balancer.observe_routes import ObserveRoutes
from gllm.balancer.stats import StatsWindow
from gllm.testing.balancer import BalancerThread
from gllm.testing.loop_thread import LoopThread
from gllm.testing.net import free_port
from gllm.worker.config import WorkerConfig
from gllm.worker.server import RunningWorker, start_worker
from gllm.worker.supervisor import SupervisorConfig

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class Observed:
    """A balancer's metrics and stats; `wired` is False when the app does not feed them from its hot path."""

    metrics: BalancerMetrics
    stats: StatsWindow
    wired: bool
    sampler: asyncio.Task[None] | None = None  # the in-flight sampler started here when the app has none


def observe(balancer: BalancerThread) -> Observed:
    """The app's own metrics and stats when it has them; otherwise fresh ones with the routes registered here."""
    app = balancer.app
    assert app is not None, "start the balancer first"
    metrics = getattr(app, "metrics", None)
    stats = getattr(app, "stats", None)
    if isinstance(metrics, BalancerMetrics) and isinstance(stats, StatsWindow):
        return Observed(metrics, stats, wired=True)
    stats = StatsWindow()
    metrics = BalancerMetrics(app.cluster, app.config.policy, stats)
    if httpx.get(balancer.url + "/metrics", timeout=10).status_code == 404:
        ObserveRoutes(app.cluster, metrics, stats, app.config).register(app.router)

    async def start_sampler() -> asyncio.Task[None]:  # cancelled by the balancer thread's loop when it stops
        return asyncio.get_running_loop().create_task(stats.run(app.cluster.registry.all))

    return Observed(metrics, stats, wired=False, sampler=balancer.run(start_sampler()))


def parse_samples(text: str) -> Samples:
    """Every sample of a Prometheus text page, parsed by prometheus-client (so invalid text raises)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The value of one sample; 0.0 when absent (a counter never bumped is not exported)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str) -> Samples:
    """GET `url` (a /metrics page) and parse it."""
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return parse_samples(response.text)


class SimWorkers:
    """Real worker agents with simulated engines on 127.0.0.1, in one background loop; closed on exit."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._loop: LoopThread | None = None
        self.workers: list[RunningWorker] = []

    def __enter__(self) -> SimWorkers:
        self._loop = LoopThread("gllm-test-sim-workers")
        try:
            for _ in range(self._count):
                config = WorkerConfig(
                    host="127.0.0.1",
                    port=0,
                    engine="sim",
                    engine_port=free_port(),
                    supervisor=SupervisorConfig(poll_interval=0.05, stop_grace=5.0, load_timeout=60.0),
                )
                self.workers.append(self._loop.run(start_worker(config)))
        except BaseException:
            self.close()
            raise
        return self

    @property
    def urls(self) -> list[str]:
        """The workers' addresses."""
        return [worker.url for worker in self.workers]

    def close(self) -> None:
        """Stop every worker (engines first) and the loop."""
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        try:
            for worker in self.workers:
                loop.run(worker.close())
        finally:
            loop.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
