"""The worker agent's own Prometheus metrics: engine state, loads, restarts, failures and load time.

The supervisor already keeps its state; a light watcher polls its snapshot (no I/O, a few times a second)
to count events that a snapshot alone cannot show afterwards: loads started, engine (re)starts and failures.
Each worker has its own CollectorRegistry, so tests can run many workers in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from gllm import __version__
from gllm.worker.state import WorkerState, WorkerStatus
from gllm.worker.supervisor import EngineSupervisor

WATCH_INTERVAL_S = 0.25
ENGINE_SCRAPE_TIMEOUT_S = 5.0
# The classic text format (what generate_latest writes with its default escaping), understood by every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerMetrics:
    """Counts engine events and exposes them with the supervisor's current state."""

    def __init__(self, supervisor: EngineSupervisor) -> None:
        self._supervisor = supervisor
        self._started = time.monotonic()
        self.loads = 0
        self.engine_starts = 0
        self.failures = 0
        self.ready_loads = 0
        self._seen_load: float | None = None
        self._seen_pid: int | None = None
        self._seen_ready: float | None = None
        self._failed_load: float | None = None  # the load whose failure was counted (one per load)
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def observe(self, status: WorkerStatus | None = None) -> None:
        """Compare the supervisor's snapshot with the last one and count what changed."""
        status = status or self._supervisor.status()
        if status.load_started_at is not None and status.load_started_at != self._seen_load:
            self._seen_load = status.load_started_at
            self.loads += 1
        if status.engine_pid is not None and status.engine_pid != self._seen_pid:
            self._seen_pid = status.engine_pid
            self.engine_starts += 1
        if status.ready_at is not None and status.ready_at != self._seen_ready:
            self._seen_ready = status.ready_at
            self.ready_loads += 1
        if status.state is WorkerState.FAILED and self._failed_load != status.load_started_at:
            self._failed_load = status.load_started_at
            self.failures += 1

    async def run(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Watch the supervisor until cancelled."""
        while True:
            self.observe()
            await asyncio.sleep(interval)

    def render(self) -> bytes:
        """The worker's metrics in Prometheus text format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """The families (called by the registry on a scrape)."""
        status = self._supervisor.status()
        self.observe(status)
        info = GaugeMetricFamily(
            "gllm_worker_info", "The worker agent (always 1).", labels=["version", "engine", "gpus"]
        )
        info.add_metric([__version__, status.engine, ",".join(status.gpus)], 1.0)
        yield info
        state = GaugeMetricFamily(
            "gllm_worker_engine_state", "The engine's state (1 = current state).", labels=["state"]
        )
        for candidate in WorkerState:
            state.add_metric([candidate.value], 1.0 if candidate is status.state else 0.0)
        yield state
        model = GaugeMetricFamily(
            "gllm_worker_model_info", "The model loaded or loading (1).", labels=["model"]
        )
        if status.model:
            model.add_metric([status.model], 1.0)
        yield model
        yield GaugeMetricFamily(
            "gllm_worker_engine_up",
            "1 while an engine process runs.",
            value=float(status.engine_pid is not None),
        )
        if status.uptime_s is not None:
            yield GaugeMetricFamily(
                "gllm_worker_engine_uptime_seconds",
                "Seconds since the engine process started.",
                value=status.uptime_s,
            )
        if status.load_duration_s is not None:
            yield GaugeMetricFamily(
                "gllm_worker_engine_load_duration_seconds",
                "How long the last successful load took, from engine start to ready.",
                value=status.load_duration_s,
            )
        yield GaugeMetricFamily(
            "gllm_worker_uptime_seconds",
            "Seconds since the worker started.",
            value=time.monotonic() - self._started,
        )
        for name, documentation, value in (
            ("gllm_worker_engine_loads", "Model loads started.", self.loads),
            ("gllm_worker_engine_ready", "Loads that ended with the engine ready.", self.ready_loads),
            (
                "gllm_worker_engine_restarts",
                "Engine processes started after the first.",
                max(0, self.engine_starts - 1),
            ),
            ("gllm_worker_engine_failures", "Engine crashes and failed loads.", self.failures),
        ):
            yield CounterMetricFamily(name, documentation, value=float(value))


async def engine_metrics(supervisor: EngineSupervisor, session: aiohttp.ClientSession) -> bytes | None:
    """The engine's own /metrics text, or None when no engine runs or it does not answer 200 in time."""
    if supervisor.status().engine_pid is None:
        return None
    url = f"http://127.0.0.1:{supervisor.spec.port}/metrics"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        timeout = aiohttp.ClientTimeout(total=ENGINE_SCRAPE_TIMEOUT_S)
        async with session.get(url, timeout=timeout) as resp:
            if resp.status == 200:
                return await resp.read()
    return None


METRICS = web.AppKey("gllm_worker_metrics", WorkerMetrics)
