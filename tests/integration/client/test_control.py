"""Control calls, health and waiting, against a real HTTP server."""

from __future__ import annotations

import httpx
import pytest

from gllm.client import GLLM, GLLMTimeoutError, ModelLoadError, RemoteError, WorkerStatus
from gllm.testing.fake_balancer import FakeBalancer, Fault


def workers(*states: tuple[str, str | None], error: str | None = None) -> list[dict[str, object]]:
    """A GET /workers snapshot: one worker per (state, model)."""
    return [
        {
            "address": f"http://w:{i}",
            "in_flight": 0,
            "healthy": s == "ready",
            "state": s,
            "model": m,
            "last_error": error,
        }
        for i, (s, m) in enumerate(states)
    ]


@pytest.mark.integration
class TestControlCalls:
    """load_model, release_gpus, workers, models, add/remove_worker."""

    def test_load_model(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """load_model sends model_path and force_reload and returns the reply text."""
        assert gllm_client.load_model("org/new", force_reload=True) == "Model load requested"
        assert fake.requests("/load_model")[0].body == {"model_path": "org/new", "force_reload": True}
        assert gllm_client.models() == ["org/new"]

    def test_release_gpus(self, gllm_client: GLLM) -> None:
        """release_gpus returns the reply text."""
        assert gllm_client.release_gpus() == "Gpus released"

    def test_worker_registry(self, gllm_client: GLLM) -> None:
        """add_worker returns the cluster model; workers() lists it; remove_worker removes it."""
        assert gllm_client.add_worker("http://127.0.0.1:9") == "org/fake-model"
        (worker,) = gllm_client.workers()
        assert isinstance(worker, WorkerStatus)
        assert (worker.address, worker.state, worker.model, worker.in_flight) == (
            "http://127.0.0.1:9",
            "ready",
            "org/fake-model",
            0,
        )
        gllm_client.remove_worker("http://127.0.0.1:9")
        assert gllm_client.workers() == []
        with pytest.raises(RemoteError) as info:
            gllm_client.remove_worker("http://127.0.0.1:9")
        assert info.value.status_code == 404

    def test_v1_prefix_address(self, fake: FakeBalancer) -> None:
        """A server address ending in /v1 works the same."""
        with GLLM(fake.url + "/v1/") as client:
            assert client.get_completions("x") == "echo: x"


@pytest.mark.integration
class TestHealth:
    """is_healthy, wait_for_health, wait_for_live."""

    def test_is_healthy(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """True on 200, False on 503."""
        assert gllm_client.is_healthy()
        fake.set_health(503, "Worker unhealthy")
        assert not gllm_client.is_healthy()

    def test_unreachable_is_not_healthy(self, dead_url: str) -> None:
        """No server: False, no exception."""
        with GLLM(dead_url) as client:
            assert client.is_healthy(timeout=1) is False

    def test_wait_for_health(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Polls until /health says 200."""
        fake.fail_next("/health", Fault(status=503), times=3)
        assert gllm_client.wait_for_health(timeout=60, check_interval=0.01) is True
        assert len(fake.requests("/health")) == 4

    def test_wait_for_health_timeout(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A cluster that stays unhealthy: GLLMTimeoutError, a TimeoutError."""
        fake.set_health(503, "No workers available")
        with pytest.raises(GLLMTimeoutError, match="healthy"):
            gllm_client.wait_for_health(timeout=0.3, check_interval=0.05)
        assert len(fake.requests("/health")) >= 1

    def test_wait_for_live_accepts_any_status(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """An unhealthy but answering server is live."""
        fake.set_health(503, "No workers available")
        gllm_client.wait_for_live(timeout=30, check_interval=0.01)
        assert len(fake.requests("/health")) == 1

    def test_wait_for_live_timeout(self, dead_url: str) -> None:
        """Nothing listening: TimeoutError."""
        with GLLM(dead_url) as client, pytest.raises(TimeoutError):
            client.wait_for_live(timeout=0.3, check_interval=0.05)


@pytest.mark.integration
class TestWaitForModel:
    """wait_for_model follows GET /workers."""

    def test_progress_to_ready(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Returns the workers once all are ready with the model (matched by its last path component)."""
        fake.set_workers(
            workers(("ready", "old"), ("ready", "old")),
            workers(("loading", "org/new"), ("loading", "org/new")),
            workers(("ready", "org/new"), ("loading", "org/new")),
            workers(("ready", "org/new"), ("ready", "org/new")),
        )
        ready = gllm_client.wait_for_model("new", timeout=60, check_interval=0.01)
        assert [worker.state for worker in ready] == ["ready", "ready"]
        assert len(fake.requests("/workers")) == 4

    def test_default_is_the_loaded_model(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Without a model name, the model of the last load_model is awaited."""
        gllm_client.load_model("org/new")
        fake.set_workers(workers(("ready", "org/new")))
        assert len(gllm_client.wait_for_model(timeout=60, check_interval=0.01)) == 1

    def test_failed_worker(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A failed worker stops the wait with ModelLoadError naming it and its error."""
        fake.set_workers(
            workers(("loading", "m"), ("loading", "m")),
            workers(("ready", "m"), ("failed", "m"), error="CUDA out of memory"),
        )
        with pytest.raises(ModelLoadError, match="CUDA out of memory") as info:
            gllm_client.wait_for_model("m", timeout=60, check_interval=0.01)
        assert list(info.value.failures) == ["http://w:1"]

    def test_timeout(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A load that never finishes: GLLMTimeoutError with the last state."""
        fake.set_workers(workers(("ready", "m"), ("loading", "m")))
        with pytest.raises(GLLMTimeoutError, match="1/2 ready"):
            gllm_client.wait_for_model("m", timeout=0.3, check_interval=0.05)

    def test_no_workers_yet(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """An empty cluster is waited for, not declared ready."""
        fake.set_workers([], workers(("ready", "m")))
        assert len(gllm_client.wait_for_model("m", timeout=60, check_interval=0.01)) == 1

    def test_balancer_hiccups_are_tolerated(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Dropped connections and 503s while polling count as "not yet"."""
        fake.fail_next("/workers", Fault(mode="drop"))
        fake.fail_next("/workers", Fault(status=503))
        fake.set_workers(workers(("ready", "m")))
        assert len(gllm_client.wait_for_model("m", timeout=60, check_interval=0.01)) == 1
        assert len(fake.requests("/workers")) == 3

    def test_real_errors_stop_the_wait(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A 401 is not "not yet"."""
        fake.fail_next("/workers", Fault(status=401, message="key"))
        with pytest.raises(RemoteError) as info:
            gllm_client.wait_for_model("m", timeout=60, check_interval=0.01)
        assert info.value.status_code == 401

    def test_no_progress_output_off_terminal(
        self, fake: FakeBalancer, gllm_client: GLLM, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """stderr is not a terminal under pytest: nothing is drawn."""
        fake.set_workers(workers(("loading", "m")), workers(("ready", "m")))
        gllm_client.wait_for_model("m", timeout=60, check_interval=0.01)
        assert capsys.readouterr().err == ""

    def test_progress_forced_on(
        self, fake: FakeBalancer, gllm_client: GLLM, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """progress=True draws the bar on stderr even off a terminal."""
        fake.set_workers(workers(("loading", "m"), ("ready", "m")), workers(("ready", "m"), ("ready", "m")))
        gllm_client.wait_for_model("m", timeout=60, check_interval=0.01, progress=True)
        err = capsys.readouterr().err
        assert "Loading m" in err
        assert "2/2" in err

    def test_needs_a_model(self, gllm_client: GLLM) -> None:
        """Nothing loaded and no name: ValueError."""
        with pytest.raises(ValueError, match="model"):
            gllm_client.wait_for_model(timeout=1)


@pytest.mark.integration
class TestLifecycle:
    """Context manager and close()."""

    def test_context_manager_closes(self, fake: FakeBalancer) -> None:
        """Leaving the with block closes the connection pool."""
        with GLLM(fake.url) as client:
            client.models()
        assert client._http.is_closed

    def test_injected_http_client_is_not_closed(self, fake: FakeBalancer) -> None:
        """An http_client passed in belongs to the caller."""
        with httpx.Client() as http:
            with GLLM(fake.url, http_client=http) as client:
                assert client.models() == ["org/fake-model"]
            assert not http.is_closed
