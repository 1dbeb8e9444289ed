"""A real worker in front of a real simulated engine: load, relay, release."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.engine import process_gone
from gllm.worker.server import RunningWorker
from tests.integration.worker.conftest import WorkerFactory

MODEL = "sim-model"


def status(worker: RunningWorker) -> dict[str, Any]:
    return dict(httpx.get(worker.url + "/status", timeout=10).json())


def load(worker: RunningWorker, model: str = MODEL, **extra: Any) -> httpx.Response:
    return httpx.post(worker.url + "/load_model", json={"model_path": model, **extra}, timeout=10)


def wait_ready(worker: RunningWorker) -> dict[str, Any]:
    wait_until(lambda: status(worker)["state"] in ("ready", "failed"), timeout=60, what="load finished")
    current = status(worker)
    assert current["state"] == "ready", current
    return current


def start_ready(make: WorkerFactory) -> RunningWorker:
    worker = make()
    assert load(worker).status_code == 200
    wait_ready(worker)
    return worker


@pytest.fixture
def ready_worker(make_worker: WorkerFactory) -> RunningWorker:
    """A worker whose sim engine serves MODEL, for tests that change it."""
    return start_ready(make_worker)


@pytest.fixture(scope="module")
def shared_worker(make_module_worker: WorkerFactory) -> RunningWorker:
    """A worker serving MODEL shared by the tests that only send requests through it."""
    return start_ready(make_module_worker)


@pytest.mark.integration
class TestLoadModel:
    """POST /load_model: loading, then ready; no-op for the same model; force_reload restarts."""

    def test_idle_worker(self, make_worker: WorkerFactory) -> None:
        """Before any load: idle, /health 503 with a readable text, OpenAI requests 503 JSON."""
        worker = make_worker()
        current = status(worker)
        assert current["state"] == "idle"
        assert current["model"] is None
        assert current["engine"] == "sim"
        health = httpx.get(worker.url + "/health", timeout=10)
        assert health.status_code == 503
        assert health.text == "No model loaded"
        reply = httpx.post(worker.url + "/v1/chat/completions", json={"messages": []}, timeout=10)
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "engine_not_ready"
        assert httpx.get(worker.url + "/models", timeout=10).json() == {"object": "list", "data": []}

    def test_load_goes_loading_then_ready(self, make_worker: WorkerFactory) -> None:
        """The reply comes at once with state loading; /health turns 200 when the engine is ready."""
        worker = make_worker()
        reply = load(worker)
        assert reply.status_code == 200
        assert reply.json() == {"status": "Model load started", "state": "loading", "model": MODEL}
        loading = status(worker)
        if loading["state"] == "loading":  # a fast machine may already be past it
            assert httpx.get(worker.url + "/health", timeout=10).status_code == 503
            chat = httpx.post(worker.url + "/chat/completions", json={"messages": []}, timeout=10)
            assert chat.status_code == 503
            assert chat.headers["Retry-After"]
            assert httpx.get(worker.url + "/models", timeout=10).json()["data"][0]["id"] == MODEL
        ready = wait_ready(worker)
        assert httpx.get(worker.url + "/health", timeout=10).status_code == 200
        assert ready["model"] == MODEL
        assert isinstance(ready["engine_pid"], int)
        assert ready["engine_port"] == worker.context.config.engine_port
        assert ready["uptime_s"] >= 0
        assert ready["ready_at"] >= ready["load_started_at"]
        assert ready["last_error"] is None
        expected = {"state", "model", "engine", "engine_pid", "engine_port", "gpus", "uptime_s", "last_error"}
        assert expected <= set(ready)

    def test_same_model_is_a_noop(self, ready_worker: RunningWorker) -> None:
        """Loading the ready model again keeps the engine."""
        pid = status(ready_worker)["engine_pid"]
        reply = load(ready_worker)
        assert reply.status_code == 200
        assert reply.json()["state"] == "ready"
        assert status(ready_worker)["engine_pid"] == pid

    def test_force_reload_restarts(self, ready_worker: RunningWorker) -> None:
        """force_reload gives a new engine process; the old one is gone."""
        old = status(ready_worker)["engine_pid"]
        reply = httpx.post(
            ready_worker.url + "/v1/load_model", json={"model_path": MODEL, "force_reload": True}, timeout=10
        )
        assert reply.json()["state"] == "loading"
        new = wait_ready(ready_worker)["engine_pid"]
        assert new != old
        wait_until(lambda: process_gone(old), timeout=30, what="old engine gone")

    def test_other_model(self, ready_worker: RunningWorker) -> None:
        """Another model replaces the engine and is served."""
        load(ready_worker, "other-model")
        assert wait_ready(ready_worker)["model"] == "other-model"
        models = httpx.get(ready_worker.url + "/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["other-model"]

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[1]",
            b"{}",
            b'{"model_path": ""}',
            b'{"model_path": 3}',
            b'{"model_path": "m", "force_reload": "yes"}',
        ],
    )
    def test_malformed_body_is_400(self, make_worker: WorkerFactory, body: bytes) -> None:
        """Malformed bodies are refused with a readable 400 and change nothing."""
        worker = make_worker()
        reply = httpx.post(worker.url + "/load_model", content=body, timeout=10)
        assert reply.status_code == 400
        assert reply.text
        assert status(worker)["state"] == "idle"


@pytest.mark.integration
class TestRelay:
    """OpenAI requests reach the engine and come back unchanged, streams chunk by chunk."""

    def test_chat_completion(self, shared_worker: RunningWorker) -> None:
        """A chat completion passes through, at the root and under /v1."""
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
        for path in ("/chat/completions", "/v1/chat/completions"):
            reply = httpx.post(shared_worker.url + path, json=body, timeout=30)
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("application/json")
            data = reply.json()
            assert data["object"] == "chat.completion"
            assert data["usage"]["completion_tokens"] <= 5

    def test_completion(self, shared_worker: RunningWorker) -> None:
        """A text completion passes through."""
        body = {"model": MODEL, "prompt": "once upon", "max_tokens": 4}
        reply = httpx.post(shared_worker.url + "/completions", json=body, timeout=30)
        assert reply.status_code == 200
        assert reply.json()["object"] == "text_completion"

    def test_streaming(self, shared_worker: RunningWorker) -> None:
        """A stream arrives as SSE chunks ending in [DONE], usage included when asked."""
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 6,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with httpx.stream("POST", shared_worker.url + "/v1/chat/completions", json=body, timeout=30) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(event) for event in events[:-1]]
        assert len(chunks) >= 2
        assert chunks[-1]["usage"]["completion_tokens"] <= 6

    def test_engine_errors_pass_through(self, shared_worker: RunningWorker) -> None:
        """The engine's own 404 (unknown model) comes back as it is."""
        body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(shared_worker.url + "/chat/completions", json=body, timeout=30)
        assert reply.status_code == 404
        assert "error" in reply.json()

    def test_models_and_metrics(self, shared_worker: RunningWorker) -> None:
        """/models is the engine's list; /metrics its Prometheus text."""
        models = httpx.get(shared_worker.url + "/models", timeout=10).json()
        assert models["data"][0]["id"] == MODEL
        metrics = httpx.get(shared_worker.url + "/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "vllm:num_requests_running" in metrics.text

    def test_health_when_ready(self, shared_worker: RunningWorker) -> None:
        """/health and /v1/health answer 200."""
        for path in ("/health", "/v1/health"):
            assert httpx.get(shared_worker.url + path, timeout=10).status_code == 200


@pytest.mark.integration
class TestRelease:
    """POST /release_gpus stops the engine tree."""

    def test_release_stops_the_engine(self, ready_worker: RunningWorker) -> None:
        """200 when stopped, state released, no engine process left; a new load works afterwards."""
        pid = status(ready_worker)["engine_pid"]
        reply = httpx.post(ready_worker.url + "/release_gpus", timeout=60)
        assert reply.status_code == 200
        assert reply.json() == {"status": "Gpus released", "state": "released", "model": None}
        assert process_gone(pid)
        current = status(ready_worker)
        assert current["state"] == "released"
        assert current["engine_pid"] is None
        health = httpx.get(ready_worker.url + "/health", timeout=10)
        assert (health.status_code, health.text) == (503, "GPUs released")
        load(ready_worker)
        assert wait_ready(ready_worker)["engine_pid"] != pid

    def test_release_when_idle(self, make_worker: WorkerFactory) -> None:
        """Releasing with no engine is fine too."""
        worker = make_worker()
        reply = httpx.post(worker.url + "/v1/release_gpus", timeout=60)
        assert reply.status_code == 200
        assert status(worker)["state"] == "released"
