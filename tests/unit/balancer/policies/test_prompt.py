"""Prompt rendering for routing: a conversation's next turn extends its previous prompt."""

from __future__ import annotations

import pytest

from gllm.balancer.policies.prompt import prompt_text


@pytest.mark.unit
class TestPromptText:
    """Chat and completion bodies become one text."""

    def test_next_turn_extends_the_previous_prompt(self) -> None:
        """History resent with the answer and a new question starts with the previous prompt."""
        turn1 = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        turn2 = [*turn1, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
        first, second = prompt_text({"messages": turn1}), prompt_text({"messages": turn2})
        assert second.startswith(first)
        assert len(second) > len(first)

    def test_roles_and_order_matter(self) -> None:
        """The same words under another role or order are another prompt."""
        one = prompt_text({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})
        two = prompt_text({"messages": [{"role": "user", "content": "b"}, {"role": "user", "content": "a"}]})
        three = prompt_text(
            {"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]}
        )
        assert len({one, two, three}) == 3

    def test_content_parts(self) -> None:
        """Text parts give their text; other parts a fingerprint (same image, same text)."""
        image = {"type": "image_url", "image_url": {"url": "data:1"}}
        other = {"type": "image_url", "image_url": {"url": "data:2"}}
        msg = {"role": "user", "content": [{"type": "text", "text": "look "}, image]}
        text = prompt_text({"messages": [msg]})
        assert "look " in text
        assert "<image_url:" in text
        assert text == prompt_text({"messages": [msg]})
        assert text != prompt_text(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "look "}, other]}]}
        )
        assert prompt_text({"messages": [{"role": "assistant", "content": None}, "junk"]}).startswith(
            "assistant"
        )

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"prompt": "once upon"}, "once upon"),
            ({"prompt": ["first", "second"]}, "first"),
            ({"prompt": [1, 2, 3]}, "1,2,3"),
            ({"prompt": [[4, 5], [6]]}, "4,5"),
            ({"prompt": []}, ""),
            ({"input": "x"}, ""),
            ({"messages": "not a list"}, ""),
        ],
    )
    def test_completion_prompts(self, body: dict[str, object], expected: str) -> None:
        """Text, batches and token ids."""
        assert prompt_text(body) == expected
