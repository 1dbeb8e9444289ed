"""Relay details with the fake engine: headers, streaming without buffering, client hang-ups, failures."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.engine import fake_engine_template
from gllm.worker.server import RunningWorker
from tests.integration.worker.conftest import WorkerFactory


def status(worker: RunningWorker) -> dict[str, Any]:
    return dict(httpx.get(worker.url + "/status", timeout=10).json())


def ready_fake(make_worker: WorkerFactory, *flags: str) -> RunningWorker:
    worker = make_worker(engine_cmd=fake_engine_template(*flags), model="fake")
    wait_until(lambda: status(worker)["state"] == "ready", timeout=60, what="fake engine ready")
    return worker


def engine_stats(worker: RunningWorker) -> dict[str, int]:
    url = f"http://127.0.0.1:{worker.context.config.engine_port}/fake/stats"
    return dict(httpx.get(url, timeout=10).json())


@pytest.mark.integration
class TestHeaders:
    """End-to-end headers pass both ways; hop-by-hop ones do not."""

    def test_request_headers(self, make_worker: WorkerFactory) -> None:
        """Authorization and custom headers reach the engine; Connection-listed and hop-by-hop ones do not."""
        worker = ready_fake(make_worker)
        headers = {
            "Authorization": "Bearer secret",
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "dropped",
            "Proxy-Authorization": "dropped",
        }
        reply = httpx.post(worker.url + "/v1/completions", json={"prompt": "x"}, headers=headers, timeout=30)
        assert reply.status_code == 200
        seen = {name.lower(): value for name, value in reply.json()["gllm_fake"]["headers"].items()}
        assert seen["authorization"] == "Bearer secret"
        assert seen["x-custom"] == "kept"
        assert "x-hop" not in seen
        assert "proxy-authorization" not in seen
        assert reply.json()["gllm_fake"]["body"] == {"prompt": "x"}

    def test_response_headers_and_status(self, make_worker: WorkerFactory) -> None:
        """The engine's headers and error status come back."""
        worker = ready_fake(make_worker)
        ok = httpx.post(worker.url + "/chat/completions", json={"messages": []}, timeout=30)
        assert ok.headers["x-fake-engine"] == "1"
        bad = httpx.post(worker.url + "/chat/completions", content=b"[]", timeout=30)
        assert bad.status_code == 400
        assert bad.json()["error"]["message"] == "body must be a JSON object"


@pytest.mark.integration
class TestStreaming:
    """Chunks are relayed as they arrive; a client hang-up closes the engine request."""

    def test_first_chunk_arrives_before_the_stream_ends_and_hangup_reaches_engine(
        self, make_worker: WorkerFactory
    ) -> None:
        """The engine pauses 60 s after its first chunk: the client still gets it, then hangs up."""
        worker = ready_fake(make_worker, "--chunks", "3", "--chunk-delay", "60")
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 16\r\n\r\n{"stream": true}'
        )
        with socket.create_connection(("127.0.0.1", worker.port), timeout=30) as sock:
            sock.sendall(request)
            received = b""
            while b"tok0" not in received:
                data = sock.recv(65536)
                assert data, "connection closed before the first chunk"
                received += data
        assert b"text/event-stream" in received
        wait_until(
            lambda: engine_stats(worker)["abandoned_streams"] == 1, timeout=30, what="engine saw hang-up"
        )
        assert engine_stats(worker)["completed_streams"] == 0

    def test_whole_stream(self, make_worker: WorkerFactory) -> None:
        """A stream that runs to its end arrives complete."""
        worker = ready_fake(make_worker, "--chunks", "4", "--chunk-delay", "0.01")
        with httpx.stream("POST", worker.url + "/completions", json={"stream": True}, timeout=30) as reply:
            lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
        assert len(lines) == 5
        assert lines[-1] == "data: [DONE]"


@pytest.mark.integration
class TestEngineFailureOverHttp:
    """A failing engine shows in /status and /health."""

    def test_crash_is_reported(self, make_worker: WorkerFactory) -> None:
        """State failed, last_error and the engine's last lines in /status; /health 503 naming the failure."""
        worker = make_worker(engine_cmd=fake_engine_template("--never-healthy", "--crash-after", "0.3"))
        httpx.post(worker.url + "/load_model", json={"model_path": "m"}, timeout=10)
        wait_until(lambda: status(worker)["state"] == "failed", timeout=60, what="failed")
        current = status(worker)
        assert "exited with code 3" in current["last_error"]
        assert "fatal: simulated crash" in current["last_log_lines"]
        health = httpx.get(worker.url + "/health", timeout=10)
        assert health.status_code == 503
        assert health.text.startswith("Engine failed: engine exited with code 3")
        assert "fatal: simulated crash" in httpx.get(worker.url + "/logs", timeout=10).text
