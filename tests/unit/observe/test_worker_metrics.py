"""The worker agent's own metrics: state, loads, restarts, failures, load time."""

from __future__ import annotations

import dataclasses
from typing import cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gllm import __version__
from gllm.worker.metrics import WorkerMetrics
from gllm.worker.state import WorkerState, WorkerStatus
from gllm.worker.supervisor import EngineSupervisor

IDLE = WorkerStatus(
    state=WorkerState.IDLE,
    model=None,
    engine="vllm",
    engine_pid=None,
    engine_port=8010,
    gpus=["0", "1"],
    uptime_s=None,
    load_started_at=None,
    ready_at=None,
    load_duration_s=None,
    last_error=None,
)


class StubSupervisor:
    """Hands out whatever status the test sets."""

    def __init__(self) -> None:
        self.current = IDLE

    def status(self) -> WorkerStatus:
        return self.current

    def set(self, **changes: object) -> None:
        self.current = dataclasses.replace(self.current, **changes)  # type: ignore[arg-type]


def scrape(metrics: WorkerMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    return scrape(metrics)[(name, frozenset(labels.items()))]


@pytest.mark.unit
class TestWorkerMetrics:
    """Events are counted from the supervisor's snapshots; gauges show the current one."""

    def test_life_cycle(self) -> None:
        """Load, ready, crash, reload: loads, restarts, failures and load time follow."""
        supervisor = StubSupervisor()
        metrics = WorkerMetrics(cast(EngineSupervisor, supervisor))
        assert value(metrics, "gllm_worker_engine_state", state="idle") == 1
        assert value(metrics, "gllm_worker_engine_up") == 0
        assert value(metrics, "gllm_worker_info", version=__version__, engine="vllm", gpus="0,1") == 1

        supervisor.set(
            state=WorkerState.LOADING, model="m", load_started_at=10.0, engine_pid=100, uptime_s=0.1
        )
        metrics.observe()
        supervisor.set(state=WorkerState.READY, ready_at=25.0, load_duration_s=15.0, uptime_s=20.0)
        assert value(metrics, "gllm_worker_engine_state", state="ready") == 1
        assert value(metrics, "gllm_worker_engine_state", state="loading") == 0
        assert value(metrics, "gllm_worker_model_info", model="m") == 1
        assert value(metrics, "gllm_worker_engine_up") == 1
        assert value(metrics, "gllm_worker_engine_load_duration_seconds") == 15.0
        assert value(metrics, "gllm_worker_engine_uptime_seconds") == 20.0
        assert value(metrics, "gllm_worker_engine_loads_total") == 1
        assert value(metrics, "gllm_worker_engine_ready_total") == 1
        assert value(metrics, "gllm_worker_engine_restarts_total") == 0

        supervisor.set(state=WorkerState.FAILED, engine_pid=None, uptime_s=None, ready_at=None)
        metrics.observe()
        metrics.observe()  # the same failure seen twice counts once
        assert value(metrics, "gllm_worker_engine_failures_total") == 1

        supervisor.set(state=WorkerState.LOADING, load_started_at=50.0, engine_pid=200, load_duration_s=None)
        metrics.observe()
        supervisor.set(state=WorkerState.READY, ready_at=60.0, load_duration_s=9.0)
        assert value(metrics, "gllm_worker_engine_loads_total") == 2
        assert value(metrics, "gllm_worker_engine_restarts_total") == 1
        assert value(metrics, "gllm_worker_engine_ready_total") == 2
        assert value(metrics, "gllm_worker_engine_load_duration_seconds") == 9.0
        assert value(metrics, "gllm_worker_engine_failures_total") == 1

    def test_own_registry(self) -> None:
        """Two workers in one process keep separate counts."""
        first, second = StubSupervisor(), StubSupervisor()
        a = WorkerMetrics(cast(EngineSupervisor, first))
        b = WorkerMetrics(cast(EngineSupervisor, second))
        first.set(state=WorkerState.LOADING, load_started_at=1.0)
        assert value(a, "gllm_worker_engine_loads_total") == 1
        assert value(b, "gllm_worker_engine_loads_total") == 0
