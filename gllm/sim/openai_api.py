"""Parsing and validation of OpenAI requests, with vLLM's error shapes and rules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gllm.sim.config import SimConfig
from gllm.sim.template import render_chat
from gllm.sim.tokenizer import encode

ERROR_TYPES: Mapping[int, str] = MappingProxyType(
    {400: "BadRequestError", 404: "NotFoundError", 503: "ServiceUnavailableError"}
)
DEFAULT_TEMPERATURE = 1.0
MAX_N = 128


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        kind = ERROR_TYPES.get(self.status, "InternalServerError")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.status}}


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: its text (for `echo`) and its token ids."""

    text: str
    token_ids: list[int]


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling parameters that shape one request's sequences."""

    max_tokens: int
    n: int
    stop: tuple[str, ...]
    include_stop: bool
    seed: int | None
    temperature: float
    min_tokens: int
    ignore_eos: bool


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A validated chat or completion request."""

    chat: bool
    prompts: list[Prompt]
    sampling: Sampling
    stream: bool
    include_usage: bool
    echo: bool
    model: str
    """The name responses report: the one the client sent, else the engine's main name (like vLLM)."""
    leading_space: bool = True
    """Whether the first generated word is separated from the prompt text by a space."""


def parse_chat(body: object, config: SimConfig) -> GenerationRequest:
    """Validate a /v1/chat/completions body."""
    data = _object(body)
    model = _check_model(data, config)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of messages.", "messages")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(400, f"messages[{position}] must be an object with a string 'role'.", "messages")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ApiError(400, f"messages[{position}].content must be a string or a list.", "messages")
    continue_final = _continue_final_message(data, messages)
    add_generation_prompt = not continue_final and _bool(data, "add_generation_prompt", True)
    text = render_chat(messages, add_generation_prompt, continue_final)
    prompt = Prompt(text, encode(text))
    max_tokens = _optional_int(data, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _optional_int(data, "max_tokens", 1)
    # A new message starts on a fresh line; a continued one needs a space after its last word.
    leading_space = continue_final and bool(text) and not text[-1].isspace()
    return _request(data, config, [prompt], max_tokens, model, chat=True, leading_space=leading_space)


def _continue_final_message(data: Mapping[str, Any], messages: list[Any]) -> bool:
    """vLLM's `continue_final_message`, checked against `add_generation_prompt` and the last message."""
    if not _bool(data, "continue_final_message", False):
        return False
    add_generation_prompt = data.get("add_generation_prompt")
    if add_generation_prompt is not False:
        _bool(data, "add_generation_prompt", True)  # a non-boolean gets its own error first
        # vLLM refuses an explicit true in validation and the default true in the chat template.
        hint = "" if add_generation_prompt else " (it defaults to true: send `add_generation_prompt: false`)"
        raise ApiError(
            400,
            f"Cannot set both `continue_final_message` and `add_generation_prompt` to True{hint}.",
            "continue_final_message",
        )
    if messages[-1]["role"] != "assistant":
        raise ApiError(
            400,
            "Cannot set `continue_final_message` to True when the last message is not from the assistant "
            f"(it is from {messages[-1]['role']!r}).",
            "messages",
        )
    return True


def parse_completion(body: object, config: SimConfig) -> GenerationRequest:
    """Validate a /v1/completions body."""
    data = _object(body)
    model = _check_model(data, config)
    prompts = _prompts(data.get("prompt"))
    return _request(data, config, prompts, _optional_int(data, "max_tokens", 1), model, chat=False)


def _request(
    data: Mapping[str, Any],
    config: SimConfig,
    prompts: list[Prompt],
    max_tokens: int | None,
    model: str,
    chat: bool,
    leading_space: bool = True,
) -> GenerationRequest:
    stream = _bool(data, "stream", False)
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not stream:
            raise ApiError(400, "Stream options can only be defined when `stream=True`.", "stream_options")
        if not isinstance(options, dict):
            raise ApiError(400, "'stream_options' must be an object.", "stream_options")
        include_usage = _bool(options, "include_usage", False)
    longest = max(len(prompt.token_ids) for prompt in prompts)
    room = config.max_model_len - longest
    if room < 1 or (max_tokens is not None and max_tokens > room):
        wanted = longest + (max_tokens or 1)
        raise ApiError(
            400,
            f"This model's maximum context length is {config.max_model_len} tokens. However, you requested "
            f"{wanted} tokens ({longest} in the messages, {wanted - longest} in the completion). Please "
            "reduce the length of the messages or completion.",
            "max_tokens" if longest < config.max_model_len else "messages" if chat else "prompt",
        )
    n = _optional_int(data, "n", 1) or 1
    if n > MAX_N:
        raise ApiError(400, f"'n' must be at most {MAX_N}.", "n")
    temperature = _optional_number(data, "temperature", DEFAULT_TEMPERATURE)
    if temperature < 0:
        raise ApiError(400, "'temperature' must be non-negative.", "temperature")
    top_p = _optional_number(data, "top_p", 1.0)
    if not 0 < top_p <= 1:
        raise ApiError(400, "'top_p' must be in (0, 1].", "top_p")
    sampling = Sampling(
        max_tokens=max_tokens if max_tokens is not None else min(config.default_max_tokens, room),
        n=n,
        stop=_stops(data.get("stop")),
        include_stop=_bool(data, "include_stop_str_in_output", False),
        seed=_optional_int(data, "seed", None),
        temperature=temperature,
        min_tokens=_optional_int(data, "min_tokens", 0) or 0,
        ignore_eos=_bool(data, "ignore_eos", False),
    )
    echo = False if chat else _bool(data, "echo", False)
    return GenerationRequest(chat, prompts, sampling, stream, include_usage, echo, model, leading_space)


def _object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _check_model(data: Mapping[str, Any], config: SimConfig) -> str:
    """The served name the request asks for; vLLM serves its first name when the field is missing."""
    model = data.get("model")
    if model is None:
        return config.name
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string.", "model")
    if model not in config.names:
        raise ApiError(404, f"The model `{model}` does not exist.", "model")
    return model


def _prompts(prompt: object) -> list[Prompt]:
    """A string, a list of strings, a list of token ids, or a list of such lists."""
    if isinstance(prompt, str):
        return [Prompt(prompt, encode(prompt))]
    if isinstance(prompt, list) and prompt:
        if all(_is_int(item) for item in prompt):
            return [_ids_prompt(prompt)]
        if all(isinstance(item, str) for item in prompt):
            return [Prompt(text, encode(text)) for text in prompt]
        if all(isinstance(item, list) and item and all(_is_int(i) for i in item) for item in prompt):
            return [_ids_prompt(item) for item in prompt]
    raise ApiError(
        400, "'prompt' must be a string, a list of strings or a non-empty list of token ids.", "prompt"
    )


def _ids_prompt(ids: list[int]) -> Prompt:
    if any(token < 0 for token in ids):
        raise ApiError(400, "Token ids must be non-negative.", "prompt")
    return Prompt(" ".join(f"<|{token}|>" for token in ids), list(ids))


def _stops(stop: object) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return tuple(stop)
    raise ApiError(400, "'stop' must be a string, a list of strings or null.", "stop")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be a boolean.", name)
    return value


def _optional_int(data: Mapping[str, Any], name: str, minimum: int | None) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise ApiError(400, f"'{name}' must be an integer.", name)
    if minimum is not None and value < minimum:
        raise ApiError(400, f"'{name}' must be at least {minimum}, got {value}.", name)
    return int(value)


def _optional_number(data: Mapping[str, Any], name: str, default: float) -> float:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ApiError(400, f"'{name}' must be a number.", name)
    return float(value)
