"""Return modes for responses and stream chunks."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gllm.client._protocol import Kind
from gllm.client._results import choice_texts, delta_text, shape_chunk, shape_result, to_openai
from gllm.client.errors import GLLMError


def chat(*contents: str | None) -> dict[str, Any]:
    """A chat completion with one choice per content (listed in reverse index order to test sorting)."""
    choices = [
        {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
        for i, c in enumerate(contents)
    ]
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": choices[::-1]}


def completion(*texts: str) -> dict[str, Any]:
    """A text completion with one choice per text."""
    choices = [
        {"index": i, "text": t, "finish_reason": "length", "logprobs": None} for i, t in enumerate(texts)
    ]
    return {"id": "t", "object": "text_completion", "created": 1, "model": "m", "choices": choices}


def chat_chunk(content: str | None, role: bool = False) -> dict[str, Any]:
    """A chat stream chunk."""
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


@pytest.mark.unit
class TestPrimitives:
    """Plain text out."""

    def test_single_choice_is_a_string(self) -> None:
        """n=1 gives the text."""
        assert shape_result(Kind.CHAT, chat("hello"), "primitives") == "hello"

    def test_several_choices_are_a_list_in_index_order(self) -> None:
        """n>1 gives a list ordered by choice index."""
        assert shape_result(Kind.CHAT, chat("a", "b", "c"), "primitives") == ["a", "b", "c"]

    def test_completion_texts(self) -> None:
        """Completions read `text`."""
        assert shape_result(Kind.COMPLETION, completion("x", "y"), "primitives") == ["x", "y"]

    def test_null_content(self) -> None:
        """A tool-call answer without content gives an empty string."""
        assert shape_result(Kind.CHAT, chat(None), "primitives") == ""

    def test_no_choices(self) -> None:
        """A response without choices is a protocol error."""
        with pytest.raises(GLLMError, match="choices"):
            choice_texts(Kind.CHAT, {"id": "x"})


@pytest.mark.unit
class TestRawAndOpenAI:
    """Dicts and the openai package's types."""

    def test_raw_is_untouched(self) -> None:
        """raw returns the very dict."""
        data = chat("a")
        assert shape_result(Kind.CHAT, data, "raw") is data

    def test_openai_chat(self) -> None:
        """openai mode gives a ChatCompletion."""
        result = shape_result(Kind.CHAT, chat("hi"), "openai")
        assert isinstance(result, ChatCompletion)
        assert result.choices[0].message.content == "hi"

    def test_openai_completion(self) -> None:
        """openai mode gives a Completion."""
        result = shape_result(Kind.COMPLETION, completion("t"), "openai")
        assert isinstance(result, Completion)
        assert result.choices[0].text == "t"

    def test_openai_chunks(self) -> None:
        """Stream chunks become ChatCompletionChunk, and completion chunks Completion even when not strict."""
        assert isinstance(shape_chunk(Kind.CHAT, chat_chunk("x"), "openai"), ChatCompletionChunk)
        loose = completion("t")
        loose["choices"][0]["finish_reason"] = None  # streamed completions carry null, which the type rejects
        shaped = to_openai(Kind.COMPLETION, loose, chunk=True)
        assert isinstance(shaped, Completion)
        assert shaped.choices[0].text == "t"

    def test_without_openai_falls_back_to_dict(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When openai cannot be imported the dict comes back."""
        import builtins

        real_import = builtins.__import__

        def no_openai(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("openai"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_openai)
        data = chat("a")
        assert shape_result(Kind.CHAT, data, "openai") is data


@pytest.mark.unit
class TestStreamChunks:
    """Chunks in primitives mode are text deltas."""

    def test_delta(self) -> None:
        """The content delta is yielded."""
        assert shape_chunk(Kind.CHAT, chat_chunk("he"), "primitives") == "he"

    def test_role_only_and_usage_chunks_are_skipped(self) -> None:
        """Chunks without text give None (skipped)."""
        assert shape_chunk(Kind.CHAT, chat_chunk(None, role=True), "primitives") is None
        usage = {"id": "c", "choices": [], "usage": {"total_tokens": 3}}
        assert shape_chunk(Kind.CHAT, usage, "primitives") is None
        assert shape_chunk(Kind.CHAT, usage, "raw") is usage

    def test_completion_delta(self) -> None:
        """Completion chunks read `text`."""
        assert delta_text(Kind.COMPLETION, completion(" wor")) == " wor"
