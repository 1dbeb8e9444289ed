"""AsyncGLLM, the asyncio twin, against a real HTTP server (each test runs its own event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from openai.types.chat import ChatCompletion

from gllm.client import AsyncGLLM, GLLMConnectionError, GLLMTimeoutError, ModelLoadError, RemoteError
from gllm.testing.fake_balancer import FakeBalancer, Fault
from tests.integration.client.conftest import FAST_RETRIES

T = TypeVar("T")


def run_with(fake_url: str, body: Callable[[AsyncGLLM], Awaitable[T]], **options: Any) -> T:
    """Run `body` with a fresh AsyncGLLM of `fake_url` in a fresh event loop, closing the client after."""

    async def main() -> T:
        async with AsyncGLLM(fake_url, **{**FAST_RETRIES, **options}) as client:
            return await body(client)

    return asyncio.run(main())


def ready_workers(model: str) -> list[dict[str, object]]:
    """One worker ready with `model`."""
    return [{"address": "http://w:0", "in_flight": 0, "healthy": True, "state": "ready", "model": model}]


@pytest.mark.integration
class TestAsyncGeneration:
    """Completions and streams as coroutines and async generators."""

    def test_chat_in_every_mode(self, fake: FakeBalancer) -> None:
        """primitives, openai and raw."""

        async def body(client: AsyncGLLM) -> None:
            assert await client.get_chat_completion("hi") == "echo: hi"
            assert isinstance(await client.get_chat_completion("hi", return_mode="openai"), ChatCompletion)
            assert (await client.get_completions("x", return_mode="raw"))["object"] == "text_completion"

        run_with(fake.url, body)

    def test_concurrent_calls(self, fake: FakeBalancer) -> None:
        """Many calls at once share the client."""

        async def body(client: AsyncGLLM) -> list[Any]:
            return await asyncio.gather(*(client.get_completions(f"p{i}") for i in range(20)))

        assert run_with(fake.url, body) == [f"echo: p{i}" for i in range(20)]

    def test_stream(self, fake: FakeBalancer) -> None:
        """An async generator of text deltas."""

        async def body(client: AsyncGLLM) -> str:
            return "".join([delta async for delta in client.stream_chat_completion("a b c")])

        assert run_with(fake.url, body) == "echo: a b c"

    def test_stream_raw_completions(self, fake: FakeBalancer) -> None:
        """Raw completion chunks, usage included."""

        async def body(client: AsyncGLLM) -> list[Any]:
            stream = client.stream_completions("q", return_mode="raw", stream_options={"include_usage": True})
            return [chunk async for chunk in stream]

        chunks = run_with(fake.url, body)
        assert chunks[-1]["usage"]["total_tokens"] == 5

    def test_stream_error_event(self, fake: FakeBalancer) -> None:
        """An error event mid-stream raises RemoteError."""
        fake.fail_next(
            "/chat/completions", Fault(status=500, mode="stream_error", message="boom", after_chunks=1)
        )

        async def body(client: AsyncGLLM) -> None:
            async for _ in client.stream_chat_completion("a b", model="org/fake-model"):
                pass

        with pytest.raises(RemoteError, match="boom"):
            run_with(fake.url, body)

    def test_early_close(self, fake: FakeBalancer) -> None:
        """aclose() on a half-read stream hangs up; the client stays usable."""

        async def body(client: AsyncGLLM) -> str:
            async with contextlib.aclosing(client.stream_chat_completion("a b c d")) as stream:
                async for _ in stream:
                    break
            return str(await client.get_chat_completion("again"))

        assert run_with(fake.url, body) == "echo: again"


@pytest.mark.integration
class TestAsyncRetries:
    """The same retry rules as the sync client."""

    def test_503_then_success(self, fake: FakeBalancer) -> None:
        """Two 503s, then the answer."""
        fake.fail_next("/chat/completions", Fault(status=503, retry_after="0"), times=2)

        async def body(client: AsyncGLLM) -> Any:
            return await client.get_chat_completion("hi", model="org/fake-model")

        assert run_with(fake.url, body) == "echo: hi"
        assert len(fake.requests("/chat/completions")) == 3

    def test_no_retry_on_400(self, fake: FakeBalancer) -> None:
        """A 400 is sent once and raised."""
        fake.fail_next("/chat/completions", Fault(status=400, message="bad"), times=3)

        async def body(client: AsyncGLLM) -> Any:
            return await client.get_chat_completion("hi", model="org/fake-model")

        with pytest.raises(RemoteError) as info:
            run_with(fake.url, body)
        assert (info.value.status_code, info.value.message) == (400, "bad")
        assert len(fake.requests("/chat/completions")) == 1

    def test_dropped_connection(self, fake: FakeBalancer) -> None:
        """A dropped connection is retried."""
        fake.fail_next("/models", Fault(mode="drop"))

        async def body(client: AsyncGLLM) -> list[str]:
            return await client.models()

        assert run_with(fake.url, body) == ["org/fake-model"]

    def test_unreachable(self, dead_url: str) -> None:
        """Nothing listening: GLLMConnectionError."""

        async def body(client: AsyncGLLM) -> Any:
            return await client.workers()

        with pytest.raises(GLLMConnectionError):
            run_with(dead_url, body)


@pytest.mark.integration
class TestAsyncControlAndWaiting:
    """Control calls and waits as coroutines."""

    def test_control_calls(self, fake: FakeBalancer) -> None:
        """load_model, release_gpus, add_worker, workers, remove_worker."""

        async def body(client: AsyncGLLM) -> None:
            assert await client.load_model("org/x") == "Model load requested"
            assert await client.release_gpus() == "Gpus released"
            assert await client.add_worker("http://w:1") == "org/x"
            assert [w.address for w in await client.workers()] == ["http://w:1"]
            await client.remove_worker("http://w:1")
            assert await client.is_healthy()

        run_with(fake.url, body)

    def test_wait_for_model_ready(self, fake: FakeBalancer) -> None:
        """Waits through loading to ready."""
        loading = [
            {"address": "http://w:0", "in_flight": 0, "healthy": False, "state": "loading", "model": "m"}
        ]
        fake.set_workers(loading, loading, ready_workers("m"))

        async def body(client: AsyncGLLM) -> int:
            return len(await client.wait_for_model("m", timeout=60, check_interval=0.01))

        assert run_with(fake.url, body) == 1
        assert len(fake.requests("/workers")) == 3

    def test_wait_for_model_failed(self, fake: FakeBalancer) -> None:
        """A failed worker raises ModelLoadError."""
        failed = [
            {"address": "http://w:0", "in_flight": 0, "healthy": False, "state": "failed", "last_error": "x"}
        ]
        fake.set_workers(failed)

        async def body(client: AsyncGLLM) -> Any:
            return await client.wait_for_model("m", timeout=60, check_interval=0.01)

        with pytest.raises(ModelLoadError):
            run_with(fake.url, body)

    def test_wait_for_health_timeout(self, fake: FakeBalancer) -> None:
        """An unhealthy cluster times out with GLLMTimeoutError."""
        fake.set_health(503)

        async def body(client: AsyncGLLM) -> Any:
            return await client.wait_for_health(timeout=0.3, check_interval=0.05)

        with pytest.raises(GLLMTimeoutError):
            run_with(fake.url, body)

    def test_wait_for_health_and_live(self, fake: FakeBalancer) -> None:
        """Health after a few 503s; live at once."""
        fake.fail_next("/health", Fault(status=503), times=2)

        async def body(client: AsyncGLLM) -> bool:
            await client.wait_for_live(timeout=30, check_interval=0.01)
            return await client.wait_for_health(timeout=30, check_interval=0.01)

        assert run_with(fake.url, body) is True

    def test_close(self, fake: FakeBalancer) -> None:
        """close() closes the pool."""

        async def body() -> bool:
            client = AsyncGLLM(fake.url)
            await client.models()
            await client.close()
            return client._http.is_closed

        assert asyncio.run(body())
