"""Mid-stream failover: reading what a broken stream delivered, and building the request that continues it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gllm.balancer.failover import StreamProgress, continuation, read_progress


def event(payload: Any) -> bytes:
    """One SSE event."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat_chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
    """A chat.completion.chunk event with one choice."""
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    return event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def text_chunk(text: str, finish: str | None = None, index: int = 0) -> bytes:
    """A text_completion event with one choice."""
    return event(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "choices": [{"index": index, "text": text, "finish_reason": finish}],
        }
    )


@pytest.mark.unit
class TestReadProgress:
    """The text and chunk count the client has already received."""

    def test_chat(self) -> None:
        """Content deltas are joined; the role chunk with empty content is not counted."""
        events = chat_chunk(role=True) + chat_chunk("Hello") + chat_chunk(" world")
        assert read_progress(events) == StreamProgress("Hello world", 2, False)

    def test_completions(self) -> None:
        """Text pieces are joined."""
        events = text_chunk("one") + text_chunk(" two") + text_chunk(" three")
        assert read_progress(events) == StreamProgress("one two three", 3, False)

    def test_finish_reason_means_finished(self) -> None:
        """A choice with a finish_reason has finished, even without [DONE]."""
        events = text_chunk("a") + text_chunk(" b", finish="length")
        progress = read_progress(events)
        assert progress is not None
        assert progress.finished
        assert progress.text == "a b"

    def test_done_means_finished(self) -> None:
        """[DONE] ends the stream."""
        events = chat_chunk("x") + b"data: [DONE]\n\n"
        assert read_progress(events) == StreamProgress("x", 1, True)

    def test_usage_chunk_with_no_choices(self) -> None:
        """A usage-only chunk (empty choices) is fine."""
        events = chat_chunk("x") + event({"choices": [], "usage": {"completion_tokens": 1}})
        assert read_progress(events) == StreamProgress("x", 1, False)

    def test_empty(self) -> None:
        """Nothing delivered yet: empty progress, continuable from the start."""
        assert read_progress(b"") == StreamProgress("", 0, False)

    def test_comments_and_other_fields_are_ignored(self) -> None:
        """Only data: lines count; comments and event:/id: lines are skipped."""
        events = b": keep-alive\n\nevent: message\nid: 3\n" + chat_chunk("y")
        assert read_progress(events) == StreamProgress("y", 1, False)

    def test_crlf_events(self) -> None:
        """Events separated by CRLF are read too."""
        events = chat_chunk("a").replace(b"\n", b"\r\n") + chat_chunk("b").replace(b"\n", b"\r\n")
        assert read_progress(events) == StreamProgress("ab", 2, False)

    @pytest.mark.parametrize(
        "events",
        [
            text_chunk("a") + text_chunk("b", index=1),  # several choices: n > 1
            b"data: {not json\n\n",
            b"data: [1, 2]\n\n",
            event({"choices": ["text"]}),
        ],
    )
    def test_cannot_continue(self, events: bytes) -> None:
        """Several choices, broken JSON or odd shapes: None (the stream cannot be continued)."""
        assert read_progress(events) is None


@pytest.mark.unit
class TestContinuationChat:
    """Chat continues the partial assistant message."""

    def test_appends_partial_assistant_message(self) -> None:
        """The partial text becomes a final assistant message continued by the engine."""
        request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        body = continuation("/chat/completions", request, StreamProgress("Hello wor", 2, False))
        assert body is not None
        assert body["messages"] == [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello wor"},
        ]
        assert body["continue_final_message"] is True
        assert body["add_generation_prompt"] is False
        assert body["stream"] is True
        assert request["messages"] == [{"role": "user", "content": "hi"}]  # the original is untouched

    def test_nothing_delivered_resends_as_is(self) -> None:
        """With no text yet, the request is re-sent unchanged (no empty assistant message)."""
        request = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        body = continuation("/v1/chat/completions", request, StreamProgress("", 0, False))
        assert body == request

    def test_messages_not_a_list(self) -> None:
        """A request without a messages list cannot be continued."""
        assert continuation("/chat/completions", {"messages": "x"}, StreamProgress("a", 1, False)) is None


@pytest.mark.unit
class TestContinuationCompletions:
    """Completions continue from prompt + text so far."""

    def test_prompt_extended(self) -> None:
        """The prompt grows by the delivered text."""
        request = {"prompt": "Once upon", "max_tokens": 10, "stream": True}
        body = continuation("/completions", request, StreamProgress(" a time", 2, False))
        assert body is not None
        assert body["prompt"] == "Once upon a time"
        assert body["max_tokens"] == 8
        assert request["prompt"] == "Once upon"

    @pytest.mark.parametrize("prompt", [["a", "b"], [1, 2, 3], None, 5])
    def test_non_string_prompt_refused(self, prompt: object) -> None:
        """Token-id or list prompts (and a missing prompt) are not continued."""
        assert continuation("/completions", {"prompt": prompt}, StreamProgress("x", 1, False)) is None


@pytest.mark.unit
class TestContinuationLimits:
    """n > 1 is refused; the token budget shrinks by what was delivered."""

    @pytest.mark.parametrize("n", [2, 5])
    def test_several_choices_refused(self, n: int) -> None:
        """n > 1 cannot be continued."""
        request = {"prompt": "p", "n": n}
        assert continuation("/completions", request, StreamProgress("x", 1, False)) is None

    @pytest.mark.parametrize("n", [1, None])
    def test_one_choice_allowed(self, n: int | None) -> None:
        """n = 1 or null is fine."""
        assert (
            continuation("/completions", {"prompt": "p", "n": n}, StreamProgress("x", 1, False)) is not None
        )

    @pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
    def test_budget_reduced(self, key: str) -> None:
        """max_tokens / max_completion_tokens drop by the chunks delivered."""
        request = {"messages": [{"role": "user", "content": "q"}], key: 50}
        body = continuation("/chat/completions", request, StreamProgress("a b c", 3, False))
        assert body is not None
        assert body[key] == 47

    def test_budget_spent(self) -> None:
        """When the delivered chunks used the whole budget, there is nothing left to continue."""
        request = {"prompt": "p", "max_tokens": 3}
        assert continuation("/completions", request, StreamProgress("a b c", 3, False)) is None
        assert continuation("/completions", request, StreamProgress("a b c d", 4, False)) is None

    def test_no_budget_kept_absent(self) -> None:
        """Without max_tokens, none is added."""
        body = continuation("/completions", {"prompt": "p"}, StreamProgress("a", 1, False))
        assert body is not None
        assert "max_tokens" not in body
