"""The official `openai` package against the balancer in front of simulated engines."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from gllm.sim import BackgroundSimCluster
from gllm.testing import wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.sim import sim_engines

pytestmark = pytest.mark.integration

MODEL = "org/sdk-model"


@pytest.fixture
def engines() -> Iterator[BackgroundSimCluster]:
    """Two simulated engines serving MODEL."""
    with sim_engines(2, model=MODEL) as cluster:
        yield cluster


@pytest.fixture
def sdk(
    engines: BackgroundSimCluster, balancer: BalancerThread, client: httpx.Client
) -> Iterator[openai.OpenAI]:
    """An OpenAI client whose base URL is the balancer, with both engines registered."""
    for url in engines.urls:
        assert client.post("/add_worker", json={"address": url}).status_code == 200
    with openai.OpenAI(base_url=f"{balancer.url}/v1", api_key="unused", max_retries=0) as sdk_client:
        yield sdk_client


class TestOpenAISDK:
    """Chat, completions, streams and the model list through the official client."""

    def test_chat_completion(self, sdk: openai.OpenAI) -> None:
        """A chat completion comes back parsed, with usage."""
        reply = sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=8, seed=1
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens <= 8

    def test_completion(self, sdk: openai.OpenAI) -> None:
        """A text completion comes back parsed."""
        reply = sdk.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=6)
        assert reply.choices[0].text
        assert reply.object == "text_completion"

    def test_chat_stream(self, sdk: openai.OpenAI) -> None:
        """A streamed chat arrives as chunks that join into the whole answer, with a usage chunk."""
        stream = sdk.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "tell me"}],
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text
        assert chunks[-1].usage is not None

    def test_completion_stream(self, sdk: openai.OpenAI) -> None:
        """A streamed completion arrives in several chunks."""
        chunks = list(sdk.completions.create(model=MODEL, prompt="abc", max_tokens=5, stream=True))
        assert len(chunks) >= 2

    def test_models_list(self, sdk: openai.OpenAI) -> None:
        """The model list names the engines' model once the balancer has asked them."""
        wait_until(lambda: MODEL in [m.id for m in sdk.models.list()], timeout=30, what="model listed")

    def test_unknown_model_is_not_found(self, sdk: openai.OpenAI) -> None:
        """A model no worker serves raises the SDK's NotFoundError."""
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="no/such-model", messages=[{"role": "user", "content": "x"}])
