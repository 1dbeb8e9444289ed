"""Retries, errors and timeouts against a real HTTP server."""

from __future__ import annotations

import time

import pytest

from gllm.client import GLLM, GLLMConnectionError, GLLMTimeoutError, RemoteError
from gllm.testing.fake_balancer import FakeBalancer, Fault
from tests.integration.client.conftest import FAST_RETRIES


@pytest.mark.integration
class TestRetried:
    """Connection errors, 429 and 503 are retried, then succeed."""

    def test_503_then_success(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Two 503s, then the answer: three attempts."""
        fake.fail_next("/chat/completions", Fault(status=503, retry_after="0"), times=2)
        assert gllm_client.get_chat_completion("hi", model="org/fake-model") == "echo: hi"
        assert len(fake.requests("/chat/completions")) == 3

    def test_429_then_success(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Rate limiting is retried."""
        fake.fail_next("/completions", Fault(status=429, message="slow down"))
        assert gllm_client.get_completions("hi", model="org/fake-model") == "echo: hi"
        assert len(fake.requests("/completions")) == 2

    def test_dropped_connection_then_success(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A connection closed without an answer is retried."""
        fake.fail_next("/workers", Fault(mode="drop"), times=2)
        assert gllm_client.workers() == []
        assert len(fake.requests("/workers")) == 3

    def test_control_calls_are_retried_too(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """load_model answers 503 while busy: retried."""
        fake.fail_next("/load_model", Fault(status=503))
        assert gllm_client.load_model("m") == "Model load requested"
        assert len(fake.requests("/load_model")) == 2

    def test_retry_after_is_honoured(self, fake: FakeBalancer) -> None:
        """A Retry-After longer than the backoff makes the client wait at least that long."""
        fake.fail_next("/models", Fault(status=503, retry_after="0.3"))
        with GLLM(fake.url, max_retries=1, backoff_base=0.0) as client:
            started = time.monotonic()
            assert client.models() == ["org/fake-model"]
            assert time.monotonic() - started >= 0.3


@pytest.mark.integration
class TestNotRetried:
    """Other statuses are final."""

    @pytest.mark.parametrize("status", [400, 401, 404, 422, 500, 502, 504])
    def test_final_statuses(self, fake: FakeBalancer, gllm_client: GLLM, status: int) -> None:
        """Exactly one attempt, and the status in the error."""
        fake.fail_next("/chat/completions", Fault(status=status), times=5)
        with pytest.raises(RemoteError) as info:
            gllm_client.get_chat_completion("hi", model="org/fake-model")
        assert info.value.status_code == status
        assert len(fake.requests("/chat/completions")) == 1

    def test_gives_up_after_max_retries(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A server that stays at 503 gets 1 + max_retries attempts, then RemoteError(503)."""
        fake.fail_next("/chat/completions", Fault(status=503, message="loading", retry_after="0"), times=10)
        with pytest.raises(RemoteError) as info:
            gllm_client.get_chat_completion("hi", model="org/fake-model")
        assert info.value.status_code == 503
        assert info.value.retry_after == 0.0
        assert len(fake.requests("/chat/completions")) == 1 + FAST_RETRIES["max_retries"]

    def test_max_retries_zero(self, fake: FakeBalancer) -> None:
        """max_retries=0 sends once."""
        fake.fail_next("/workers", Fault(status=503))
        with GLLM(fake.url, max_retries=0) as client, pytest.raises(RemoteError):
            client.workers()
        assert len(fake.requests("/workers")) == 1


@pytest.mark.integration
class TestRemoteError:
    """What a RemoteError carries."""

    def test_openai_error_fields(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Status, message, type, code, method and URL."""
        fake.fail_next("/chat/completions", Fault(status=400, message="bad messages"))
        with pytest.raises(RemoteError) as info:
            gllm_client.get_chat_completion("hi", model="org/fake-model")
        error = info.value
        assert (error.status_code, error.message, error.error_type, error.code) == (
            400,
            "bad messages",
            "fake_error",
            400,
        )
        assert (error.method, error.url) == ("POST", f"{fake.url}/chat/completions")
        assert "bad messages" in error.body

    def test_plain_text_error(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """The balancer's text errors (load_model) become the message."""
        fake.fail_next("/load_model", Fault(status=500, text="Failed to load model m: http://w:1 said 500"))
        with pytest.raises(RemoteError, match="Failed to load model m") as info:
            gllm_client.load_model("m")
        assert info.value.status_code == 500

    def test_wrong_api_key(self) -> None:
        """401 when the key is missing; the key is sent as a bearer token when given."""
        with FakeBalancer(api_key="secret") as fake:
            with GLLM(fake.url) as anonymous, pytest.raises(RemoteError) as info:
                anonymous.release_gpus()
            assert info.value.status_code == 401
            with GLLM(fake.url, api_key="secret") as client:
                assert client.release_gpus() == "Gpus released"
            assert fake.requests("/release_gpus")[-1].headers["Authorization"] == "Bearer secret"


@pytest.mark.integration
class TestUnreachableAndSlow:
    """Connection failures and timeouts."""

    def test_connection_refused(self, dead_url: str) -> None:
        """Nothing listening: GLLMConnectionError (a ConnectionError) after the retries."""
        with GLLM(dead_url, **FAST_RETRIES) as client, pytest.raises(ConnectionError) as info:
            client.models()
        assert isinstance(info.value, GLLMConnectionError)

    def test_read_timeout_is_not_retried(self, fake: FakeBalancer) -> None:
        """A hung generation times out once: GLLMTimeoutError, no second attempt."""
        fake.fail_next("/chat/completions", Fault(mode="hang"), times=3)
        with GLLM(fake.url, timeout=0.3, **FAST_RETRIES) as client, pytest.raises(GLLMTimeoutError):
            client.get_chat_completion("hi", model="org/fake-model")
        assert len(fake.requests("/chat/completions")) == 1

    def test_control_timeout(self, fake: FakeBalancer) -> None:
        """load_model's timeout bounds the call."""
        fake.fail_next("/load_model", Fault(mode="hang"))
        with GLLM(fake.url) as client, pytest.raises(TimeoutError):
            client.load_model("m", timeout=0.3)
