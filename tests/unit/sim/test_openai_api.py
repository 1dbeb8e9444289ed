"""Request validation with vLLM's rules and OpenAI error shapes."""

from __future__ import annotations

from typing import Any

import pytest

from gllm.sim.config import SimConfig
from gllm.sim.openai_api import ApiError, parse_chat, parse_completion
from gllm.sim.tokenizer import encode

CONFIG = SimConfig(model="org/m", served_model_name=("m",), max_model_len=64, default_max_tokens=16)
MESSAGES = [{"role": "user", "content": "hi"}]


def chat_error(body: object) -> ApiError:
    """The error parse_chat raises for `body`."""
    with pytest.raises(ApiError) as caught:
        parse_chat(body, CONFIG)
    return caught.value


def completion_error(body: object) -> ApiError:
    """The error parse_completion raises for `body`."""
    with pytest.raises(ApiError) as caught:
        parse_completion(body, CONFIG)
    return caught.value


@pytest.mark.unit
class TestChatRequests:
    """Valid chat bodies become generation requests."""

    def test_defaults(self) -> None:
        """No model field means the served model; defaults for everything else."""
        request = parse_chat({"messages": MESSAGES}, CONFIG)
        assert request.chat
        assert not request.stream
        assert not request.include_usage
        assert request.sampling.max_tokens == 16
        assert request.sampling.n == 1
        assert request.sampling.temperature == 1.0
        assert request.prompts[0].token_ids == encode("<|user|>\nhi<|end|>\n<|assistant|>\n")

    def test_max_completion_tokens_wins(self) -> None:
        """max_completion_tokens is the newer name of max_tokens."""
        request = parse_chat(
            {"model": "m", "messages": MESSAGES, "max_tokens": 3, "max_completion_tokens": 5}, CONFIG
        )
        assert request.sampling.max_tokens == 5

    def test_streaming_options(self) -> None:
        """include_usage is read from stream_options."""
        body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        assert parse_chat(body, CONFIG).include_usage

    def test_sampling_fields(self) -> None:
        """stop, seed, n and temperature are carried."""
        body = {"messages": MESSAGES, "stop": ["x", "y"], "seed": 3, "n": 2, "temperature": 0}
        sampling = parse_chat(body, CONFIG).sampling
        assert (sampling.stop, sampling.seed, sampling.n, sampling.temperature) == (("x", "y"), 3, 2, 0.0)

    def test_default_max_tokens_fits_context(self) -> None:
        """Without max_tokens the completion never overflows max_model_len."""
        long = {"messages": [{"role": "user", "content": "w " * 45}]}
        request = parse_chat(long, CONFIG)
        assert len(request.prompts[0].token_ids) + request.sampling.max_tokens == 64


@pytest.mark.unit
class TestCompletionRequests:
    """Prompts come as text, batches of text or token ids."""

    def test_prompt_forms(self) -> None:
        """String, list of strings, token ids, lists of token ids."""
        assert len(parse_completion({"prompt": "a b"}, CONFIG).prompts) == 1
        assert len(parse_completion({"prompt": ["a", "b"]}, CONFIG).prompts) == 2
        assert parse_completion({"prompt": [5, 6, 7]}, CONFIG).prompts[0].token_ids == [5, 6, 7]
        assert len(parse_completion({"prompt": [[1], [2, 3]]}, CONFIG).prompts) == 2

    def test_echo(self) -> None:
        """echo is a completion-only option."""
        assert parse_completion({"prompt": "a", "echo": True}, CONFIG).echo
        assert not parse_chat({"messages": MESSAGES, "echo": True}, CONFIG).echo


@pytest.mark.unit
class TestErrors:
    """Bad bodies are 400s, other models are 404s, each with an OpenAI error body."""

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ([], None),
            ({}, "messages"),
            ({"messages": []}, "messages"),
            ({"messages": "hi"}, "messages"),
            ({"messages": [{"content": "no role"}]}, "messages"),
            ({"messages": [{"role": "user", "content": 5}]}, "messages"),
            ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
            ({"messages": MESSAGES, "max_tokens": "5"}, "max_tokens"),
            ({"messages": MESSAGES, "max_tokens": True}, "max_tokens"),
            ({"messages": MESSAGES, "max_tokens": 1000}, "max_tokens"),
            ({"messages": MESSAGES, "n": 0}, "n"),
            ({"messages": MESSAGES, "temperature": -1}, "temperature"),
            ({"messages": MESSAGES, "temperature": "hot"}, "temperature"),
            ({"messages": MESSAGES, "top_p": 0}, "top_p"),
            ({"messages": MESSAGES, "stop": 3}, "stop"),
            ({"messages": MESSAGES, "seed": 1.5}, "seed"),
            ({"messages": MESSAGES, "stream": "yes"}, "stream"),
            ({"messages": MESSAGES, "stream_options": {"include_usage": True}}, "stream_options"),
            ({"messages": MESSAGES, "model": 3}, "model"),
        ],
    )
    def test_chat_400(self, body: Any, param: str | None) -> None:
        """Each invalid chat body names the offending parameter."""
        error = chat_error(body)
        assert error.status == 400
        assert error.body() == {
            "error": {"message": error.message, "type": "BadRequestError", "param": param, "code": 400}
        }

    @pytest.mark.parametrize("prompt", [None, 5, [], [1, "a"], [-1], [[]], {"text": "a"}])
    def test_completion_400(self, prompt: object) -> None:
        """Malformed prompts are refused."""
        assert completion_error({"prompt": prompt}).status == 400

    def test_prompt_longer_than_context(self) -> None:
        """A prompt alone beyond max_model_len is refused, naming the prompt."""
        error = completion_error({"prompt": "w " * 80})
        assert (error.status, error.param) == (400, "prompt")
        assert "maximum context length is 64" in error.message

    def test_unknown_model(self) -> None:
        """Any other model name is a 404 NotFoundError; the model path is not an alias."""
        for body in ({"messages": MESSAGES, "model": "other"}, {"messages": MESSAGES, "model": "org/m"}):
            error = chat_error(body)
            assert error.status == 404
            assert error.body()["error"]["type"] == "NotFoundError"
        assert completion_error({"prompt": "a", "model": "other"}).status == 404


@pytest.mark.unit
class TestServedNames:
    """Every served name is accepted and reported back as sent, like vLLM."""

    NAMES = SimConfig(model="/ckpt/step-100/", served_model_name=("/ckpt/step-100/", "step-100"))

    def test_each_name_is_reported_as_sent(self) -> None:
        """The request's `model` is echoed; without one, the first served name."""
        for name in ("/ckpt/step-100/", "step-100"):
            assert parse_chat({"messages": MESSAGES, "model": name}, self.NAMES).model == name
            assert parse_completion({"prompt": "a", "model": name}, self.NAMES).model == name
        assert parse_chat({"messages": MESSAGES}, self.NAMES).model == "/ckpt/step-100/"

    def test_other_names_are_404(self) -> None:
        """A name outside the served list is unknown, even a path variant of one."""
        for name in ("step-101", "/ckpt/step-100"):
            with pytest.raises(ApiError) as caught:
                parse_chat({"messages": MESSAGES, "model": name}, self.NAMES)
            assert caught.value.status == 404


PARTIAL = [*MESSAGES, {"role": "assistant", "content": "The answer"}]
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


@pytest.mark.unit
class TestContinueFinalMessage:
    """vLLM's continue_final_message: the last assistant message stays open and generation extends it."""

    def test_renders_the_open_message(self) -> None:
        """The prompt ends with the partial answer, no end marker, no new generation prompt."""
        request = parse_chat({"messages": PARTIAL, **CONTINUE}, CONFIG)
        assert request.prompts[0].text == "<|user|>\nhi<|end|>\n<|assistant|>\nThe answer"
        assert request.prompts[0].token_ids == encode(request.prompts[0].text)

    def test_continuation_is_the_original_prompt_plus_the_partial_text(self) -> None:
        """The failover property: original prompt + partial == continuation prompt, in text and tokens."""
        original = parse_chat({"messages": MESSAGES}, CONFIG).prompts[0]
        resumed = parse_chat({"messages": PARTIAL, **CONTINUE}, CONFIG).prompts[0]
        assert resumed.text == original.text + "The answer"
        assert resumed.token_ids == original.token_ids + encode("The answer")

    def test_first_word_is_spaced_from_the_partial_text(self) -> None:
        """A partial ending in a word gets a space before the next word; a new message does not."""
        assert parse_chat({"messages": PARTIAL, **CONTINUE}, CONFIG).leading_space
        spaced = [*MESSAGES, {"role": "assistant", "content": "The answer "}]
        assert not parse_chat({"messages": spaced, **CONTINUE}, CONFIG).leading_space
        empty = [*MESSAGES, {"role": "assistant", "content": ""}]
        assert not parse_chat({"messages": empty, **CONTINUE}, CONFIG).leading_space
        assert not parse_chat({"messages": MESSAGES}, CONFIG).leading_space

    def test_false_changes_nothing(self) -> None:
        """continue_final_message false renders as before."""
        plain = parse_chat({"messages": PARTIAL}, CONFIG).prompts[0]
        assert parse_chat({"messages": PARTIAL, "continue_final_message": False}, CONFIG).prompts[0] == plain

    @pytest.mark.parametrize(
        ("fields", "param", "words"),
        [
            (
                {"continue_final_message": True, "add_generation_prompt": True},
                "continue_final_message",
                "both",
            ),
            ({"continue_final_message": True}, "continue_final_message", "defaults to true"),
            ({"continue_final_message": "yes", "add_generation_prompt": False}, "continue_final_message", ""),
            ({"continue_final_message": True, "add_generation_prompt": 0}, "add_generation_prompt", ""),
        ],
    )
    def test_conflicts_are_400(self, fields: dict[str, Any], param: str, words: str) -> None:
        """add_generation_prompt must be false (explicitly, it defaults to true), and both must be booleans."""
        error = chat_error({"messages": PARTIAL, **fields})
        assert (error.status, error.param) == (400, param)
        assert words in error.message

    def test_last_message_must_be_the_assistant(self) -> None:
        """There is no assistant message to continue after a user message."""
        error = chat_error({"messages": MESSAGES, **CONTINUE})
        assert (error.status, error.param) == (400, "messages")
        assert "not from the assistant" in error.message
