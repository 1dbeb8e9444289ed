"""The official openai package talks to the simulated engine directly."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from gllm.sim import EngineHandle


@pytest.fixture
def sdk(engine: EngineHandle) -> Iterator[openai.OpenAI]:
    """An OpenAI client pointed at the engine."""
    client = openai.OpenAI(base_url=engine.openai_url, api_key="unused", max_retries=0, timeout=30)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.integration
class TestOpenAISDK:
    """Chat, completions, streams, models and errors through openai's own parsing."""

    def test_chat(self, sdk: openai.OpenAI) -> None:
        """A typed ChatCompletion with usage."""
        reply = sdk.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "hello"}], max_tokens=5, seed=1
        )
        assert reply.choices[0].finish_reason == "length"
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens == 5

    def test_completion(self, sdk: openai.OpenAI) -> None:
        """A typed Completion with n choices."""
        reply = sdk.completions.create(model="sim-model", prompt="hello", max_tokens=3, n=2)
        assert [choice.index for choice in reply.choices] == [0, 1]

    def test_chat_stream(self, sdk: openai.OpenAI) -> None:
        """Streamed deltas join into text; the usage chunk comes last."""
        stream = sdk.chat.completions.create(
            model="sim-model",
            messages=[{"role": "user", "content": "stream please"}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 6
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"

    def test_models_list(self, sdk: openai.OpenAI) -> None:
        """models.list shows the served model."""
        assert [model.id for model in sdk.models.list()] == ["sim-model"]

    def test_errors_map_to_sdk_exceptions(self, sdk: openai.OpenAI) -> None:
        """404 is NotFoundError, 400 is BadRequestError."""
        with pytest.raises(openai.NotFoundError):
            sdk.completions.create(model="missing", prompt="x")
        with pytest.raises(openai.BadRequestError):
            sdk.completions.create(model="sim-model", prompt="x", max_tokens=-1)
