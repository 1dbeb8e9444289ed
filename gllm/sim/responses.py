"""Response bodies and SSE chunks shaped like vLLM's OpenAI server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Choice:
    """The finished text of one choice."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields shared by every body and chunk of one response."""

    id: str
    created: int
    model: str
    chat: bool

    @property
    def object(self) -> str:
        """The `object` of a non-streaming body."""
        return "chat.completion" if self.chat else "text_completion"

    @property
    def chunk_object(self) -> str:
        """The `object` of a streaming chunk."""
        return "chat.completion.chunk" if self.chat else "text_completion"

    def head(self, streaming: bool) -> dict[str, Any]:
        """id, object, created, model."""
        kind = self.chunk_object if streaming else self.object
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying a JSON payload."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """OpenAI usage object; prompt_tokens_details.cached_tokens counts prefix-cache hits."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def body(envelope: Envelope, choices: list[Choice], usage_object: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a non-streaming response."""
    rendered: list[dict[str, Any]] = []
    for choice in choices:
        item: dict[str, Any] = {"index": choice.index}
        if envelope.chat:
            item["message"] = {"role": "assistant", "content": choice.text, "tool_calls": []}
        else:
            item["text"] = choice.text
        item.update(logprobs=None, finish_reason=choice.finish_reason, stop_reason=choice.stop_reason)
        rendered.append(item)
    return {**envelope.head(streaming=False), "choices": rendered, "usage": usage_object}


def chunk(
    envelope: Envelope,
    index: int,
    text: str,
    finish_reason: str | None,
    stop_reason: str | None,
    with_usage_field: bool,
    role: bool = False,
) -> bytes:
    """One streaming chunk for one choice; `role` marks the first chat chunk that only carries the role."""
    choice: dict[str, Any] = {"index": index}
    if envelope.chat:
        choice["delta"] = {"role": "assistant", "content": ""} if role else {"content": text}
    else:
        choice["text"] = text
    choice.update(logprobs=None, finish_reason=finish_reason, stop_reason=stop_reason)
    payload = {**envelope.head(streaming=True), "choices": [choice]}
    if with_usage_field:
        payload["usage"] = None
    return sse(payload)


def usage_chunk(envelope: Envelope, usage_object: dict[str, Any]) -> bytes:
    """The last chunk before [DONE] when `stream_options.include_usage` is set."""
    return sse({**envelope.head(streaming=True), "choices": [], "usage": usage_object})
