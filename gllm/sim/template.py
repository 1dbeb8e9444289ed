"""The simulated chat template: how chat messages become one prompt text.

Each message renders as `<|ROLE|>\\nCONTENT<|end|>\\n`; the generation prompt `<|assistant|>\\n` follows
when `add_generation_prompt` is true (the default). Rendering is a pure concatenation, so the prompt of
turn k is a text prefix of turn k+1's when a client resends the history with the assistant's answer: a
multi-turn conversation shares its prefix and hits the prefix cache.

With `continue_final_message` (vLLM's extension) the last message is left open, without its end marker,
and generation continues it. For a partial answer P, `render_chat(history) + P` equals
`render_chat(history + [assistant P], False, True)`, so a stream resumed on another engine (the balancer's
failover) hits the prefix cache for everything the first engine had computed.

Content may be a string, null, or a list of parts; text parts contribute their text and every other part
(images, audio...) contributes the placeholder `<|ROLE_PART|>` such as `<|image_url|>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

END = "<|end|>\n"
GENERATION_PROMPT = "<|assistant|>\n"


def render_content(content: object) -> str:
    """Text of one message's content (string, null or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        pieces: list[str] = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, Mapping):
                kind = part.get("type", "text")
                text = part.get("text")
                pieces.append(text if kind == "text" and isinstance(text, str) else f"<|{kind}|>")
        return "".join(pieces)
    raise TypeError("content must be a string, null or a list of parts")


def render_chat(
    messages: Sequence[Mapping[str, object]],
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
) -> str:
    """Prompt text of a chat: every message in order, then the generation prompt or the open last message."""
    if add_generation_prompt and continue_final_message:
        raise ValueError("add_generation_prompt and continue_final_message exclude each other")
    rendered = [
        f"<|{message['role']}|>\n{render_content(message.get('content'))}{END}" for message in messages
    ]
    if continue_final_message and rendered:
        rendered[-1] = rendered[-1].removesuffix(END)
    if add_generation_prompt:
        rendered.append(GENERATION_PROMPT)
    return "".join(rendered)
