"""GLLM against a real HTTP server: completions in every return mode, streams, and the request it sends."""

from __future__ import annotations

import contextlib

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gllm.client import GLLM, RemoteError
from gllm.testing.fake_balancer import FakeBalancer, Fault


@pytest.mark.integration
class TestCompletions:
    """Non-streamed chat and text completions."""

    def test_chat_primitives(self, gllm_client: GLLM) -> None:
        """The default return mode gives the text."""
        assert gllm_client.get_chat_completion([{"role": "user", "content": "hello"}]) == "echo: hello"

    def test_chat_several_choices(self, gllm_client: GLLM) -> None:
        """n>1 gives a list of texts."""
        assert gllm_client.get_chat_completion("hi", n=2) == ["echo: hi", "echo: hi #1"]

    def test_chat_openai(self, gllm_client: GLLM) -> None:
        """openai mode gives the SDK's ChatCompletion."""
        result = gllm_client.get_chat_completion("hi", return_mode="openai")
        assert isinstance(result, ChatCompletion)
        assert result.choices[0].message.content == "echo: hi"
        assert result.usage is not None

    def test_chat_raw(self, gllm_client: GLLM) -> None:
        """raw mode gives the decoded dict."""
        result = gllm_client.get_chat_completion("hi", return_mode="raw")
        assert result["object"] == "chat.completion"

    def test_completions(self, gllm_client: GLLM) -> None:
        """Text completions in primitives and openai mode."""
        assert gllm_client.get_completions("abc") == "echo: abc"
        assert isinstance(gllm_client.get_completions("abc", return_mode="openai"), Completion)

    def test_request_body(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Named and extra arguments reach the server unchanged."""
        gllm_client.get_chat_completion(
            "q", model="org/fake-model", max_tokens=7, temperature=0.0, stop=["x"], seed=3
        )
        (sent,) = fake.requests("/chat/completions")
        assert sent.body == {
            "model": "org/fake-model",
            "messages": [{"role": "user", "content": "q"}],
            "max_tokens": 7,
            "temperature": 0.0,
            "top_p": 1.0,
            "stop": ["x"],
            "seed": 3,
        }

    def test_default_model_comes_from_the_server(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Without model=, the first model of GET /models is used, asked once."""
        gllm_client.get_completions("a")
        gllm_client.get_completions("b")
        assert [req.body["model"] for req in fake.requests("/completions")] == ["org/fake-model"] * 2
        assert len(fake.requests("/models")) == 1

    def test_default_model_follows_load_model(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """After load_model, calls without model= use the loaded model."""
        gllm_client.load_model("other/model")
        gllm_client.get_completions("a")
        assert fake.requests("/completions")[0].body["model"] == "other/model"
        assert fake.requests("/models") == []

    def test_default_model_is_forgotten_on_404(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A 404 (the model was swapped behind our back) makes the next call look the model up again."""
        gllm_client.get_completions("a")
        fake.fail_next("/completions", Fault(status=404, message="model not found"))
        with pytest.raises(RemoteError):
            gllm_client.get_completions("b")
        gllm_client.get_completions("c")
        assert len(fake.requests("/models")) == 2

    def test_unknown_model(self, gllm_client: GLLM) -> None:
        """The server's 404 comes back as RemoteError."""
        with pytest.raises(RemoteError) as info:
            gllm_client.get_chat_completion("hi", model="nope")
        assert (info.value.status_code, info.value.code) == (404, "model_not_found")


@pytest.mark.integration
class TestStreaming:
    """Streams, in every return mode."""

    def test_text_deltas(self, gllm_client: GLLM) -> None:
        """primitives yields text deltas that add up to the answer."""
        deltas = list(gllm_client.stream_chat_completion("one two three"))
        assert len(deltas) > 1
        assert "".join(deltas) == "echo: one two three"

    def test_completion_deltas(self, gllm_client: GLLM) -> None:
        """Text completions stream too."""
        assert "".join(gllm_client.stream_completions("a b")) == "echo: a b"

    def test_raw_chunks_with_usage(self, gllm_client: GLLM) -> None:
        """raw yields every chunk, the usage-only one included."""
        chunks = list(
            gllm_client.stream_chat_completion("x", return_mode="raw", stream_options={"include_usage": True})
        )
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
        assert chunks[-1]["usage"]["completion_tokens"] == 2

    def test_openai_chunks(self, gllm_client: GLLM) -> None:
        """openai yields ChatCompletionChunk objects."""
        chunks = list(gllm_client.stream_chat_completion("x", return_mode="openai"))
        assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)

    def test_several_choices_in_raw(self, gllm_client: GLLM) -> None:
        """n>1 streams are told apart by choice index in raw mode."""
        chunks = list(gllm_client.stream_completions("z", n=2, return_mode="raw"))
        assert {chunk["choices"][0]["index"] for chunk in chunks} == {0, 1}

    def test_request_says_stream(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """The request carries stream: true, and is sent only when iterated."""
        stream = gllm_client.stream_chat_completion("x", model="org/fake-model")
        assert fake.requests("/chat/completions") == []
        list(stream)
        assert fake.requests("/chat/completions")[0].body["stream"] is True

    def test_error_event_mid_stream(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """An error event raises RemoteError after the chunks before it."""
        fake.fail_next(
            "/chat/completions", Fault(status=500, mode="stream_error", message="engine died", after_chunks=2)
        )
        received: list[str] = []
        with pytest.raises(RemoteError, match="engine died"):
            received.extend(gllm_client.stream_chat_completion("a b c"))
        assert received == ["echo:"]  # the role chunk and one text chunk were sent

    def test_retried_before_the_stream_starts(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """A 503 before any chunk is retried like any request."""
        fake.fail_next("/chat/completions", Fault(status=503), times=2)
        assert "".join(gllm_client.stream_chat_completion("ok")) == "echo: ok"
        assert len(fake.requests("/chat/completions")) == 3

    def test_early_close(self, fake: FakeBalancer, gllm_client: GLLM) -> None:
        """Closing a stream early hangs up cleanly; the client stays usable."""
        with contextlib.closing(gllm_client.stream_chat_completion("a b c d")) as stream:
            assert next(stream) == "echo:"
        assert gllm_client.get_chat_completion("again") == "echo: again"

    def test_bad_arguments_fail_at_the_call(self, gllm_client: GLLM) -> None:
        """Argument mistakes raise at once, not at the first iteration."""
        with pytest.raises(ValueError, match="n=1"):
            gllm_client.stream_chat_completion("x", n=3)
        with pytest.raises(ValueError, match="stream"):
            gllm_client.get_chat_completion("x", stream=True)
