"""Return modes: shape a decoded response or stream chunk into what the caller asked for, without I/O.

- "raw": the decoded JSON dict, untouched.
- "openai": the `openai` package's type (ChatCompletion, ChatCompletionChunk or Completion) when openai is
  installed, else the raw dict.
- "primitives": plain text. A response gives the text for n=1 and a list of texts (in choice order) for n>1;
  a stream chunk gives its text delta, and chunks without text (role-only, usage-only) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gllm.client._protocol import Kind
from gllm.client.errors import GLLMError


def choice_texts(kind: Kind, data: Mapping[str, Any]) -> list[str]:
    """The text of every choice of a response, ordered by choice index."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise GLLMError(f"response has no 'choices' list: {str(data)[:200]}")
    ordered = sorted(choices, key=lambda choice: int(choice.get("index", 0)))
    return [_choice_text(kind, choice) for choice in ordered]


def _choice_text(kind: Kind, choice: Mapping[str, Any]) -> str:
    if kind is Kind.CHAT:
        message = choice.get("message") or {}
        return str(message.get("content") or "")
    return str(choice.get("text") or "")


def delta_text(kind: Kind, chunk: Mapping[str, Any]) -> str:
    """The text a stream chunk adds, over all of its choices ("" for role-only or usage-only chunks)."""
    parts: list[str] = []
    for choice in chunk.get("choices") or ():
        if kind is Kind.CHAT:
            content = (choice.get("delta") or {}).get("content")
        else:
            content = choice.get("text")
        if content:
            parts.append(str(content))
    return "".join(parts)


def shape_result(kind: Kind, data: dict[str, Any], return_mode: str) -> Any:
    """A whole (non-streamed) response in the requested return mode."""
    if return_mode == "raw":
        return data
    if return_mode == "openai":
        return to_openai(kind, data, chunk=False)
    texts = choice_texts(kind, data)
    return texts[0] if len(texts) == 1 else texts


def shape_chunk(kind: Kind, chunk: dict[str, Any], return_mode: str) -> Any | None:
    """One stream chunk in the requested return mode; None when primitives mode skips it."""
    if return_mode == "raw":
        return chunk
    if return_mode == "openai":
        return to_openai(kind, chunk, chunk=True)
    return delta_text(kind, chunk) or None


def to_openai(kind: Kind, data: dict[str, Any], *, chunk: bool) -> Any:
    """The openai package's object for a response or chunk; the dict itself when openai is not installed."""
    try:
        if kind is Kind.CHAT:
            from openai.types.chat import ChatCompletion, ChatCompletionChunk

            model_type: Any = ChatCompletionChunk if chunk else ChatCompletion
        else:
            # The OpenAI API streams completions as Completion objects too.
            from openai.types import Completion

            model_type = Completion
    except ImportError:
        return data
    try:
        return model_type.model_validate(data)
    except ValueError:
        # Servers send fields the SDK's strict types reject (e.g. finish_reason null in a completion chunk);
        # the SDK itself builds its objects leniently, so do the same.
        return model_type.model_construct(**data)
