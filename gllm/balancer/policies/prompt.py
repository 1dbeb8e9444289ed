"""The prompt of a request as one text, rendered so that a conversation's turns share their prefix."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import orjson

# Separators that cannot occur in JSON-decoded text by accident in a way that matters: a role line, then the
# content, then a record separator. Only the order and identity of messages matter, not the exact template.
_ROLE_END = "\x1f"
_MESSAGE_END = "\x1e"


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        text = part.get("text")
        if part.get("type", "text") == "text" and isinstance(text, str):
            return text
        # An image or audio part: identical parts render identically, different ones differently.
        return f"<{part.get('type')}:{zlib.crc32(orjson.dumps(part, default=str)):08x}>"
    return ""


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_part_text(part) for part in content)
    return str(content)


def prompt_text(body: Mapping[str, Any]) -> str:
    """Chat messages rendered in order, or a completion's prompt; "" when there is neither."""
    messages = body.get("messages")
    if isinstance(messages, list):
        pieces: list[str] = []
        for message in messages:
            if isinstance(message, Mapping):
                pieces.append(f"{message.get('role')}{_ROLE_END}{_content_text(message.get('content'))}")
                pieces.append(_MESSAGE_END)
        return "".join(pieces)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        if isinstance(first, str):  # a batch of prompts: route on the first
            return first
        if isinstance(first, int):  # token ids
            return ",".join(str(token) for token in prompt)
        if isinstance(first, list):  # a batch of token-id prompts
            return ",".join(str(token) for token in first)
    return ""
