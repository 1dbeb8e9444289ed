"""Completion calls: argument checks and request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from gllm.client._generation import Generation
from gllm.client._protocol import ClientSettings, Kind


def make(kind: Kind = Kind.CHAT, payload: Any = "hi", stream: bool = False, **overrides: Any) -> Generation:
    """A Generation with defaults, overridable."""
    args: dict[str, Any] = {
        "model": None,
        "max_tokens": 16,
        "temperature": 0.5,
        "top_p": None,
        "stop": None,
        "return_mode": "primitives",
        "extra": {},
    }
    args.update(overrides)
    return Generation(kind, payload, stream=stream, **args)


@pytest.mark.unit
class TestBody:
    """The OpenAI body."""

    def test_chat_body(self) -> None:
        """A string becomes one user message; None sampling values are left out."""
        body = make().body("m")
        assert body == {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 16,
            "temperature": 0.5,
        }

    def test_messages_pass_through(self) -> None:
        """A message list is sent as given."""
        messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        assert make(payload=messages).body("m")["messages"] == messages

    def test_completion_body(self) -> None:
        """Completions send the prompt as given (text, list, tokens)."""
        assert make(Kind.COMPLETION, [1, 2, 3]).body("m")["prompt"] == [1, 2, 3]

    def test_stop_list_and_string(self) -> None:
        """stop is sent as a string or a list."""
        assert make(stop="x").body("m")["stop"] == "x"
        assert make(stop=("a", "b")).body("m")["stop"] == ["a", "b"]

    def test_extra_kwargs_pass_through_and_win(self) -> None:
        """Unknown OpenAI fields go through untouched, and may override the named ones."""
        body = make(extra={"seed": 7, "n": 2, "max_tokens": 99, "logprobs": True}).body("m")
        assert (body["seed"], body["n"], body["max_tokens"], body["logprobs"]) == (7, 2, 99, True)

    def test_stream_flag(self) -> None:
        """Streaming calls set stream: true; others do not mention it."""
        assert make(stream=True).body("m")["stream"] is True
        assert "stream" not in make().body("m")

    def test_spec(self) -> None:
        """The request goes to the route of its kind with the generation timeout."""
        spec = make(Kind.COMPLETION).spec("m", ClientSettings("http://h", timeout=42.0))
        assert (spec.method, spec.path, spec.timeout.read) == ("POST", "/completions", 42.0)


@pytest.mark.unit
class TestChecks:
    """Mistakes are caught before anything is sent."""

    def test_stream_kwarg_refused(self) -> None:
        """stream=True in kwargs points at the streaming methods."""
        with pytest.raises(ValueError, match="stream_chat_completion"):
            make(extra={"stream": True})

    def test_bad_return_mode(self) -> None:
        """An unknown return mode is refused."""
        with pytest.raises(ValueError, match="return_mode"):
            make(return_mode="json")

    def test_primitives_stream_needs_one_choice(self) -> None:
        """Bare text deltas cannot carry several choices."""
        with pytest.raises(ValueError, match="n=1"):
            make(stream=True, extra={"n": 2})
        make(stream=True, extra={"n": 2}, return_mode="raw")  # fine in raw mode
        make(stream=False, extra={"n": 2})  # and without streaming

    def test_messages_type(self) -> None:
        """Messages must be a string or a list."""
        with pytest.raises(TypeError):
            make(payload=42)
