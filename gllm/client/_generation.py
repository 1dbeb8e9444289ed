"""One completion call, described and checked before anything is sent, without I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gllm.client._protocol import ClientSettings, Kind, RequestSpec, check_return_mode
from gllm.client._results import shape_chunk, shape_result

Messages = str | Sequence[Mapping[str, Any]]
Stop = str | Sequence[str] | None

DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 1.0


def as_messages(messages: Messages) -> list[Mapping[str, Any]]:
    """Chat messages as a list; a bare string becomes one user message."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)


@dataclass(frozen=True)
class Generation:
    """A chat (`payload` = messages) or completion (`payload` = prompt) call with its arguments."""

    kind: Kind
    payload: Any
    model: str | None
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: Stop
    return_mode: str
    extra: Mapping[str, Any]
    stream: bool

    def __post_init__(self) -> None:
        check_return_mode(self.return_mode)
        if "stream" in self.extra:
            raise ValueError("pass no 'stream' argument: use stream_chat_completion / stream_completions")
        if self.kind is Kind.CHAT and not isinstance(self.payload, str | Sequence):
            raise TypeError("messages must be a string or a list of message dicts")
        n = self.extra.get("n")
        if self.stream and self.return_mode == "primitives" and isinstance(n, int) and n > 1:
            # Bare text deltas cannot tell the choices apart.
            raise ValueError("a primitives stream needs n=1; use return_mode='raw' or 'openai' for n > 1")

    def body(self, model: str) -> dict[str, Any]:
        """The OpenAI request body, for `model`; unknown keyword arguments are passed through as-is."""
        body: dict[str, Any] = {"model": model}
        if self.kind is Kind.CHAT:
            body["messages"] = as_messages(self.payload)
        else:
            body["prompt"] = self.payload
        for name, value in (
            ("max_tokens", self.max_tokens),
            ("temperature", self.temperature),
            ("top_p", self.top_p),
        ):
            if value is not None:
                body[name] = value
        if self.stop is not None:
            body["stop"] = self.stop if isinstance(self.stop, str) else list(self.stop)
        body.update(self.extra)
        if self.stream:
            body["stream"] = True
        return body

    def spec(self, model: str, settings: ClientSettings) -> RequestSpec:
        """The HTTP request of this call."""
        return RequestSpec("POST", self.kind.value, settings.generation_timeout(), self.body(model))

    def shape(self, data: dict[str, Any]) -> Any:
        """A whole response in this call's return mode."""
        return shape_result(self.kind, data, self.return_mode)

    def shape_chunk(self, chunk: dict[str, Any]) -> Any | None:
        """A stream chunk in this call's return mode; None when it carries nothing to yield."""
        return shape_chunk(self.kind, chunk, self.return_mode)
