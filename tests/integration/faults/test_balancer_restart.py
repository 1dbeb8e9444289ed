"""Scenario 4: restart the balancer (SIGTERM, start again with the same state file) under load."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from gllm.testing.faults import MODEL, ProcessSet, record_figures, wait_workers_ready
from gllm.testing.load import LoadDriver, LoadSpec, Outcome
from gllm.testing.net import free_port, wait_until


def saved(path: Path) -> dict[str, Any]:
    """The state file's content, workers sorted ({} while it does not exist)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(data.get("workers"), list):
        data["workers"] = sorted(data["workers"])
    return data


def causes(outcomes: list[Outcome]) -> dict[str, int]:
    """Why clients had to retry: each failed attempt's cause, counted."""
    return dict(Counter(cause for o in outcomes for cause in o.retry_causes))


@pytest.mark.integration
@pytest.mark.slow
class TestBalancerRestart:
    """The cluster survives a balancer restart: no re-registration needed, retrying clients see no error."""

    def test_restart_restores_workers_and_model(self, procs: ProcessSet, tmp_path: Path) -> None:
        """Workers and model come back from the state file; clients that retry all succeed."""
        state = tmp_path / "state" / "balancer.json"
        port = free_port()
        first = procs.balancer("--state-file", str(state), port=port, name="balancer-first")
        # Workers register once at start, then not again for an hour: only the state file can bring them back.
        workers = [
            procs.worker("--balancer", first.url, "--register-interval", "3600", name=f"worker{i}")
            for i in range(4)
        ]
        addresses = sorted(w.url for w in workers)
        wait_until(lambda: sorted(first.workers()) == addresses, timeout=60, what="four registrations")
        response = httpx.post(f"{first.url}/load_model", json={"model_path": MODEL}, timeout=60.0)
        assert response.status_code == 200, response.text
        wait_workers_ready(first, addresses)
        wait_until(lambda: saved(state) == {"version": 1, "workers": addresses, "model": MODEL}, what="saved")
        registrations = [w.registrations() for w in workers]
        assert registrations == [1, 1, 1, 1]

        spec = LoadSpec(
            total=120, concurrency=8, client_retries=100, retry_delay=0.2, request_id_prefix="rst"
        )
        load = LoadDriver(first.url, spec).start()
        load.wait_completed(30)
        stopping = time.monotonic()
        assert first.terminate(timeout=60) == 0, first.describe()
        drained_in = time.monotonic() - stopping
        second = procs.balancer("--state-file", str(state), port=port, name="balancer-second")
        restarted_in = time.monotonic() - stopping

        view = second.workers()  # at once: before any worker could have registered again
        models = [m["id"] for m in httpx.get(f"{second.url}/v1/models", timeout=10.0).json()["data"]]
        report = load.join()
        second.wait_idle()

        # Requests open when SIGTERM arrived and answered by the first balancer (first attempt) were drained.
        drained = [o for o in report.outcomes if o.attempts == 1 and o.started < stopping < o.finished]
        figures = report.figures()
        retries = first.retries() + second.retries()
        failovers = first.failovers() + second.failovers()
        figures.update(
            in_flight_after=second.in_flight(),
            retried=retries + failovers + figures["client_retries"],
            balancer_retries=retries,
            balancer_failovers=failovers,
            drain_seconds=round(drained_in, 2),
            down_seconds=round(restarted_in, 2),
            drained_in_flight=len(drained),
            client_retry_causes=causes(report.outcomes),
        )
        record_figures("4 balancer restart with state file", figures)

        assert sorted(view) == addresses
        assert MODEL in models
        assert "restored 4 worker(s)" in second.output()
        assert [w.registrations() for w in workers] == registrations  # nobody registered again
        assert "worker registered" not in second.output()
        assert figures["failed"] == 0, report.describe_failures() + "\n" + procs.describe()
        assert any(o.stream for o in drained), "no stream was open at SIGTERM: drain not exercised"
        assert sum(o.started > stopping for o in report.outcomes) >= 20, "no load after the restart"
        wait_workers_ready(second, addresses)
