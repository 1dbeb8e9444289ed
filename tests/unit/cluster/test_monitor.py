"""The cluster monitor's reports, from GET /workers snapshots (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from gllm.cluster.monitor import ClusterMonitor

A, B = "http://127.0.0.1:8000", "http://127.0.0.1:8100"


def worker(address: str, state: str, model: str | None = "m", error: str | None = None) -> dict[str, Any]:
    """One GET /workers entry."""
    return {"address": address, "state": state, "model": model, "last_error": error, "in_flight": 0}


class Sink:
    """A monitor with its output captured."""

    def __init__(self, model: str | None = "m", progress: bool = True) -> None:
        self.said: list[str] = []
        self.warned: list[str] = []
        names = {A: "worker 0", B: "worker 1"}
        self.monitor = ClusterMonitor(
            "http://b", names, self.said.append, self.warned.append, model=model, progress=progress
        )


@pytest.mark.unit
class TestProgress:
    """Readiness progress is printed when it changes, and 'cluster ready' once."""

    def test_progress_then_ready_once(self) -> None:
        """Lines only on change; the first all-ready poll says 'cluster ready'; later changes still show."""
        sink = Sink()
        sink.monitor.observe([])
        sink.monitor.observe([])
        sink.monitor.observe([worker(A, "loading")])
        sink.monitor.observe([worker(A, "ready"), worker(B, "loading")])
        sink.monitor.observe([worker(A, "ready"), worker(B, "ready")])
        sink.monitor.observe([worker(A, "ready"), worker(B, "ready")])
        sink.monitor.observe([worker(A, "ready"), worker(B, "unknown")])
        assert sink.said[0] == "workers ready: 0/2 with m (2 not registered yet)"
        assert sink.said[1] == "workers ready: 0/2 with m (1 loading, 1 not registered yet)"
        assert sink.said[2] == "workers ready: 1/2 with m (1 loading)"
        assert sink.said[3].startswith("cluster ready: all 2 workers serve m (")
        assert sink.said[4:] == ["workers ready: 1/2 with m (1 unknown)"]
        assert sink.monitor.all_ready

    def test_no_progress_prints_only_from_ready_on(self) -> None:
        """With progress off, nothing is printed before the cluster is ready."""
        sink = Sink(progress=False)
        sink.monitor.observe([worker(A, "loading")])
        sink.monitor.observe([worker(A, "ready"), worker(B, "ready")])
        assert len(sink.said) == 1
        assert sink.said[0].startswith("cluster ready")

    def test_without_a_model_it_says_how_to_load_one(self) -> None:
        """Idle workers and no model: the line says the workers wait for a load_model."""
        sink = Sink(model=None)
        sink.monitor.observe([worker(A, "idle", None), worker(B, "idle", None)])
        assert sink.said == ["workers registered: 2/2, no model loaded (POST /load_model to load one)"]

    def test_unknown_addresses_are_ignored(self) -> None:
        """A worker registered from elsewhere does not count as one of ours."""
        sink = Sink()
        sink.monitor.observe([worker("http://other:1", "ready")])
        assert sink.said == ["workers ready: 0/2 with m (2 not registered yet)"]


@pytest.mark.unit
class TestFailures:
    """A worker entering the failed state is reported once, on the warning channel."""

    def test_failed_worker_is_warned_once(self) -> None:
        """The warning names the worker and the balancer's last error."""
        sink = Sink()
        sink.monitor.observe([worker(A, "failed", error="engine exited with code 1")])
        sink.monitor.observe([worker(A, "failed", error="engine exited with code 1")])
        assert sink.warned == [f"worker 0 ({A}) failed: engine exited with code 1"]
        sink.monitor.observe([worker(A, "loading")])
        sink.monitor.observe([worker(A, "failed")])
        assert sink.warned[-1] == f"worker 0 ({A}) failed: no details"


@pytest.mark.unit
class TestModelHint:
    """The model a restarted balancer should be given follows what the workers serve."""

    def test_follows_a_model_swap(self) -> None:
        """Workers loading or serving another model move the hint to it."""
        sink = Sink(model="m")
        sink.monitor.observe([worker(A, "ready", "n"), worker(B, "loading", "n")])
        assert sink.monitor.model_hint == "n"

    def test_released_gpus_clear_it(self) -> None:
        """All workers released: no model, so a restarted balancer loads nothing."""
        sink = Sink(model="m")
        sink.monitor.observe([worker(A, "released", None), worker(B, "released", None)])
        assert sink.monitor.model_hint is None

    def test_unknown_states_keep_it(self) -> None:
        """Workers whose state is not known yet change nothing."""
        sink = Sink(model="m")
        sink.monitor.observe([worker(A, "unknown", None)])
        assert sink.monitor.model_hint == "m"
