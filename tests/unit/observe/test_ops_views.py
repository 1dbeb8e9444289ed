"""Operator commands without a balancer: the status table, load tracking, options and error lines."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pytest
from rich.console import Console

from gllm.client import GLLM, GLLMConnectionError, GLLMTimeoutError, RemoteError, WorkerStatus
from gllm.ops.cluster_view import ClusterView, fetch_view, health_label, render_error, render_view
from gllm.ops.common import describe, fail
from gllm.ops.load_progress import LoadTracker
from gllm.ops.options import add_balancer_options, positive_float

A = "http://10.0.0.1:8000"
B = "http://10.0.0.2:8000"


def worker(address: str, **fields: Any) -> WorkerStatus:
    raw = {"address": address, **fields}
    return WorkerStatus(
        address=address,
        in_flight=int(fields.get("in_flight", 0)),
        healthy=fields.get("healthy"),
        state=fields.get("state"),
        model=fields.get("model"),
        error=fields.get("last_error"),
        raw=raw,
    )


def text_of(renderable: Any) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


STATS = {
    "cluster": {"model": "org/model-a", "policy": "least_busy"},
    "totals": {"requests_per_s": 12.5, "latency_p50_ms": 80.0, "latency_p99_ms": 1500.0, "errors": 3},
    "workers": [{"address": A, "requests_per_s": 12.5, "latency_p50_ms": 80.0}],
}


@pytest.mark.unit
class TestStatusTable:
    """What `gllm status` draws."""

    def test_rows_and_totals(self) -> None:
        """Each worker's row, its traffic from /stats, totals, and the cluster's model and policy."""
        view = ClusterView(
            "http://lb:5333",
            [
                worker(A, state="ready", model="org/model-a", healthy=True, breaker="closed", in_flight=4),
                worker(B, state="loading", model="org/model-a", healthy=False, ejected=True, breaker="open"),
            ],
            STATS,
        )
        text = text_of(render_view(view))
        assert "model org/model-a" in text
        assert "policy least_busy" in text
        assert "last minute: p99 1.50 s, 3 errors" in text
        row_a = next(line for line in text.splitlines() if "10.0.0.1:8000" in line)
        assert "ready" in row_a
        assert "healthy" in row_a
        assert "closed" in row_a
        assert "12.5" in row_a
        assert "80 ms" in row_a
        row_b = next(line for line in text.splitlines() if "10.0.0.2:8000" in line)
        assert "ejected" in row_b
        assert "open" in row_b
        assert "2 workers" in text
        assert "1 ready" in text

    def test_without_stats(self) -> None:
        """An older balancer without /stats: the table still shows, with a note."""
        view = ClusterView("http://lb:5333", [worker(A, state="ready", healthy=None)], None)
        text = text_of(render_view(view))
        assert "no GET /stats" in text
        assert "unknown" in text

    def test_empty_cluster(self) -> None:
        """No workers: said plainly."""
        assert "no workers registered" in text_of(render_view(ClusterView("http://lb", [], STATS)))

    def test_error_keeps_last_view(self) -> None:
        """While watching, an error shows above the last good view."""
        view = ClusterView("http://lb", [worker(A, state="ready")], STATS)
        text = text_of(render_error("cannot reach the balancer", view))
        assert text.index("cannot reach") < text.index("10.0.0.1:8000")

    @pytest.mark.parametrize(
        ("fields", "label"),
        [
            ({"healthy": True}, "healthy"),
            ({"healthy": False}, "unhealthy"),
            ({"healthy": None}, "unknown"),
            ({"healthy": True, "ejected": True}, "ejected"),
        ],
    )
    def test_health_label(self, fields: dict[str, Any], label: str) -> None:
        """Health shown as one word."""
        assert health_label(worker(A, **fields)) == label


@pytest.mark.unit
class TestFetchView:
    """Reading /workers and /stats through the project's client."""

    def _client(self, handler: Any) -> tuple[GLLM, httpx.Client]:
        http = httpx.Client(transport=httpx.MockTransport(handler))
        return GLLM("http://lb:5333", max_retries=0, http_client=http), http

    def test_joins_workers_and_stats(self) -> None:
        """Both routes are read; the stats are kept as sent."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/workers":
                return httpx.Response(200, json=[{"address": A, "in_flight": 1, "state": "ready"}])
            assert request.url.path == "/stats"
            return httpx.Response(200, json=STATS)

        client, http = self._client(handler)
        view = fetch_view(client, http)
        assert [w.address for w in view.workers] == [A]
        assert view.worker_stats(A)["requests_per_s"] == 12.5
        assert view.worker_stats(B) == {}

    def test_stats_missing(self) -> None:
        """A 404 on /stats is an older balancer, not an error."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/workers":
                return httpx.Response(200, json=[])
            return httpx.Response(404, json={"error": {"message": "no route"}})

        client, http = self._client(handler)
        assert fetch_view(client, http).stats is None

    def test_stats_failing(self) -> None:
        """A 500 on /stats is reported."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/workers":
                return httpx.Response(200, json=[])
            return httpx.Response(500, text="broken")

        client, http = self._client(handler)
        with pytest.raises(RemoteError):
            fetch_view(client, http)


@pytest.mark.unit
class TestLoadTracker:
    """Following workers as they become ready with a model."""

    def test_ready_events_with_times(self) -> None:
        """Each worker is reported once, with the time since the request (or its own load time)."""
        tracker = LoadTracker("org/model-b", started=100.0)
        events = tracker.update(
            [
                worker(A, state="loading", model="org/model-b"),
                worker(B, state="loading", model="org/model-b"),
            ],
            101.0,
        )
        assert events == []
        assert tracker.summary() == "0/2 ready (loading: 2)"
        events = tracker.update(
            [worker(A, state="ready", model="org/model-b"), worker(B, state="loading", model="org/model-b")],
            104.0,
        )
        assert [(e.kind, e.address, e.seconds) for e in events] == [("ready", A, 4.0)]
        assert "loaded in 4.0s" in events[0].describe()
        events = tracker.update(
            [
                worker(A, state="ready", model="org/model-b"),
                worker(B, state="ready", model="model-b", load_duration_s=2.5),
            ],
            110.0,
        )
        assert [(e.address, e.seconds) for e in events] == [(B, 2.5)]
        assert tracker.done
        assert tracker.summary() == "2/2 ready"

    def test_already_loaded(self) -> None:
        """A worker ready at once already had the model."""
        tracker = LoadTracker("m", started=0.0)
        (event,) = tracker.update([worker(A, state="ready", model="m")], 0.1)
        assert "already loaded" in event.describe()

    def test_failure(self) -> None:
        """A failed worker is reported once, with its error."""
        tracker = LoadTracker("m", started=0.0)
        (event,) = tracker.update([worker(A, state="failed", model="m", last_error="CUDA OOM")], 3.0)
        assert event.kind == "failed"
        assert "CUDA OOM" in event.describe()
        assert tracker.failed == {A: "CUDA OOM"}
        assert tracker.update([worker(A, state="failed", model="m", last_error="CUDA OOM")], 4.0) == []
        assert not tracker.done

    def test_empty_cluster_is_not_done(self) -> None:
        """No workers: nothing is ready yet."""
        tracker = LoadTracker("m", started=0.0)
        tracker.update([], 1.0)
        assert not tracker.done


@pytest.mark.unit
class TestOptionsAndErrors:
    """Options, environment defaults and one-line errors."""

    def test_environment_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """GLLM_BALANCER and GLLM_ADMIN_KEY fill the defaults."""
        monkeypatch.setenv("GLLM_BALANCER", "http://lb:7000")
        monkeypatch.setenv("GLLM_ADMIN_KEY", "sekret")
        parser = argparse.ArgumentParser()
        add_balancer_options(parser)
        args = parser.parse_args([])
        assert args.balancer == "http://lb:7000"
        assert args.admin_key == "sekret"

    def test_positive_float(self) -> None:
        """Seconds must be numbers above zero."""
        assert positive_float("1.5") == 1.5
        for bad in ("0", "-1", "soon"):
            with pytest.raises(argparse.ArgumentTypeError):
                positive_float(bad)

    def test_error_lines(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each failure becomes one readable line; 401 hints at the admin key."""
        unreachable = describe(GLLMConnectionError("connection refused\nmore"), "http://lb")
        assert unreachable.startswith("cannot reach the balancer at http://lb")
        assert "\n" not in unreachable
        assert "did not answer in time" in describe(GLLMTimeoutError("read timeout"), "http://lb")
        unauthorized = describe(RemoteError(401, "needs a key"), "http://lb")
        assert "401" in unauthorized
        assert "--admin-key" in unauthorized
        assert fail("boom") == 1
        assert capsys.readouterr().err == "gllm: error: boom\n"
