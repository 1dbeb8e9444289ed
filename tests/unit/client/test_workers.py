"""Worker records and model readiness."""

from __future__ import annotations

from typing import Any

import pytest

from gllm.client._workers import WorkerStatus, model_matches, parse_workers, readiness
from gllm.client.errors import GLLMError


def worker(address: str = "http://w:1", **fields: Any) -> dict[str, Any]:
    """A GET /workers entry."""
    return {"address": address, "in_flight": 0, "healthy": True, **fields}


@pytest.mark.unit
class TestModelMatches:
    """A model name matches its full path or its last path component."""

    @pytest.mark.parametrize(
        ("served", "wanted"),
        [
            ("org/model", "org/model"),
            ("org/model", "model"),
            ("model", "org/model"),
            ("/models/llama-3", "llama-3"),
            ("/models/llama-3/", "llama-3"),
        ],
    )
    def test_matches(self, served: str, wanted: str) -> None:
        """Same name or path tail."""
        assert model_matches(served, wanted)

    @pytest.mark.parametrize(
        ("served", "wanted"), [("org/model", "other"), ("org/model", "org"), ("a/model", "b/model")]
    )
    def test_does_not_match(self, served: str, wanted: str) -> None:
        """Different models, and different paths with the same tail, do not match."""
        assert not model_matches(served, wanted)


@pytest.mark.unit
class TestParse:
    """GET /workers payloads."""

    def test_full_entry(self) -> None:
        """All known fields are read; the raw entry is kept."""
        entry = worker(state="failed", model="m", last_error="OOM", in_flight=3, requests_total=9)
        (parsed,) = parse_workers([entry])
        assert parsed == WorkerStatus("http://w:1", 3, True, "failed", "m", "OOM")
        assert parsed.raw["requests_total"] == 9

    def test_minimal_entry(self) -> None:
        """An older balancer's entry has only address, in_flight and healthy (maybe null)."""
        (parsed,) = parse_workers([{"address": "http://w:1", "in_flight": 0, "healthy": None}])
        assert (parsed.state, parsed.model, parsed.healthy) == (None, None, None)

    @pytest.mark.parametrize("payload", [{"address": "x"}, [{"in_flight": 1}], ["x"]])
    def test_garbage(self, payload: Any) -> None:
        """Anything but a list of entries with addresses is a protocol error."""
        with pytest.raises(GLLMError):
            parse_workers(payload)


@pytest.mark.unit
class TestReadiness:
    """When is a model loaded everywhere."""

    def test_all_ready(self) -> None:
        """Every worker ready with the model: done."""
        workers = parse_workers(
            [worker("a", state="ready", model="org/m"), worker("b", state="ready", model="m")]
        )
        state = readiness(workers, "org/m")
        assert state.done
        assert state.summary() == "2/2 ready"

    def test_some_loading(self) -> None:
        """Loading workers keep it waiting, and show up in the summary."""
        workers = parse_workers(
            [
                worker("a", state="ready", model="m"),
                worker("b", state="loading", model="m"),
                worker("c", state="idle"),
            ]
        )
        state = readiness(workers, "m")
        assert not state.done
        assert (state.ready, state.total) == (1, 3)
        assert state.summary() == "1/3 ready (idle: 1, loading: 1)"

    def test_ready_with_the_old_model(self) -> None:
        """A worker still ready with the previous model is not ready with the new one."""
        state = readiness(parse_workers([worker(state="ready", model="old")]), "new")
        assert not state.done
        assert state.states == {"other model": 1}

    def test_failures_are_collected(self) -> None:
        """Failed workers are reported with their error."""
        workers = parse_workers([worker("a", state="failed", last_error="OOM"), worker("b", state="loading")])
        assert readiness(workers, "m").failures == {"a": "OOM"}

    def test_no_workers_is_not_done(self) -> None:
        """An empty cluster is not ready."""
        state = readiness([], "m")
        assert not state.done
        assert state.summary() == "0/0 ready"

    @pytest.mark.parametrize("state_field", [{}, {"state": "unknown"}])
    def test_without_states_health_decides(self, state_field: dict[str, str]) -> None:
        """Without a reported state, a healthy worker with a matching or unknown model counts as ready."""
        healthy = parse_workers([worker(**state_field), worker("b", model="m", **state_field)])
        assert readiness(healthy, "m").done
        unhealthy = parse_workers([worker(healthy=False, **state_field)])
        assert not readiness(unhealthy, "m").done
        other = parse_workers([worker(model="x", **state_field)])
        assert not readiness(other, "m").done
