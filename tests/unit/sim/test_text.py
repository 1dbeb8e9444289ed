"""Tokenizer, chat template and deterministic text of the simulated engine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gllm.sim.template import render_chat, render_content
from gllm.sim.textgen import VOCABULARY, OutputText, TokenSampler, request_seed
from gllm.sim.tokenizer import count_tokens, encode, token_id, tokenize


@pytest.mark.unit
class TestTokenizer:
    """Words and punctuation marks are tokens; whitespace is not."""

    def test_words_and_punctuation(self) -> None:
        """'Hello, world!' is four tokens."""
        assert tokenize("Hello, world!") == ["Hello", ",", "world", "!"]
        assert count_tokens("Hello, world!") == 4

    def test_ids_are_stable_crc32(self) -> None:
        """Ids do not depend on the process (no salted str hash)."""
        assert token_id("hello") == 907060870
        assert encode("hello hello") == [907060870, 907060870]

    def test_every_vocabulary_word_is_one_token(self) -> None:
        """So completion_tokens equals the number of sampled words."""
        assert all(tokenize(word) == [word] for word in VOCABULARY)


@pytest.mark.unit
class TestChatTemplate:
    """Messages render to one prompt whose earlier turns are a prefix of later ones."""

    def test_rendering(self) -> None:
        """Role markers, content, end markers, then the generation prompt."""
        text = render_chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        assert text == "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"

    def test_without_generation_prompt(self) -> None:
        """add_generation_prompt=False leaves the assistant marker out."""
        assert render_chat([{"role": "user", "content": "Hi"}], False) == "<|user|>\nHi<|end|>\n"

    def test_content_parts(self) -> None:
        """Text parts keep their text; other parts become placeholders; null is empty."""
        parts = [{"type": "text", "text": "look "}, {"type": "image_url", "image_url": {"url": "x"}}]
        assert render_content(parts) == "look <|image_url|>"
        assert render_content(None) == ""

    @given(st.lists(st.text(max_size=30), min_size=1, max_size=4), st.text(max_size=30))
    def test_multi_turn_prompts_share_their_prefix(self, turns: list[str], answer: str) -> None:
        """Resending the history with the answer extends the previous prompt, in text and in tokens."""
        history = [{"role": "user", "content": turn} for turn in turns]
        first = render_chat(history)
        second = render_chat(
            [*history, {"role": "assistant", "content": answer}, {"role": "user", "content": "more"}]
        )
        assert second.startswith(first)


_ROLES = st.sampled_from(["system", "user", "assistant", "tool"])
_MESSAGE = st.fixed_dictionaries({"role": _ROLES, "content": st.one_of(st.none(), st.text(max_size=30))})


@pytest.mark.unit
class TestContinueFinalMessage:
    """A continued assistant message renders as the original prompt followed by the partial text."""

    def test_the_last_message_stays_open(self) -> None:
        """No end marker after the final message and no generation prompt."""
        messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
        assert render_chat(messages, False, True) == "<|user|>\nHi<|end|>\n<|assistant|>\nHel"

    def test_with_a_generation_prompt_is_refused(self) -> None:
        """Both flags at once have no meaning."""
        with pytest.raises(ValueError):
            render_chat([{"role": "assistant", "content": "x"}], True, True)

    @given(st.lists(_MESSAGE, min_size=1, max_size=4), st.text(max_size=40))
    def test_continuation_extends_the_original_prompt(
        self, history: list[dict[str, object]], partial: str
    ) -> None:
        """render(history, generation prompt) + partial == render(history + [assistant partial], continued).

        The balancer's failover resends exactly that, so the other engine finds the original prompt and the
        partial answer in its prefix cache: the equality also holds for the token ids.
        """
        original = render_chat(history)
        resumed = render_chat([*history, {"role": "assistant", "content": partial}], False, True)
        assert resumed == original + partial
        assert encode(resumed) == encode(original) + encode(partial)


@pytest.mark.unit
class TestSampling:
    """Text depends on prompt and seed only, never on chance, when asked to."""

    def test_same_seed_same_tokens(self) -> None:
        """Two samplers with the same seed draw the same tokens."""
        first, second = TokenSampler(7, True), TokenSampler(7, True)
        assert [first.next_token() for _ in range(20)] == [second.next_token() for _ in range(20)]

    def test_greedy_ignores_seed_and_choice(self) -> None:
        """Temperature 0 gives every choice the same seed."""
        prompt = encode("a prompt")
        assert request_seed(prompt, 1, 0, greedy=True) == request_seed(prompt, 2, 3, greedy=True)

    def test_seeded_choices_differ(self) -> None:
        """With a seed, each choice index gets its own stream; without one, the engine RNG decides."""
        prompt = encode("a prompt")
        assert request_seed(prompt, 1, 0, greedy=False) != request_seed(prompt, 1, 1, greedy=False)
        assert request_seed(prompt, None, 0, greedy=False) is None

    def test_pieces_carry_spaces(self) -> None:
        """Words after the first get a leading space; punctuation never does."""
        sampler = TokenSampler(3, leading_space=False)
        pieces = [sampler.next_token()[1] for _ in range(50)]
        assert not pieces[0].startswith(" ")
        assert all(piece.startswith(" ") or piece in {",", "."} for piece in pieces[1:])


@pytest.mark.unit
class TestStopStrings:
    """Output is cut at the first stop string and partial matches are held back."""

    def test_no_stop_passes_through(self) -> None:
        """Without stop strings every piece is sent at once."""
        text = OutputText(())
        assert text.append("a") == ("a", None)
        assert text.append(" b") == (" b", None)

    def test_cut_before_stop(self) -> None:
        """The stop string and what follows are not part of the output."""
        text = OutputText(["queue"])
        assert text.append("the") == ("the", None)
        assert text.append(" queue") == (" ", "queue")
        assert text.text == "the "

    def test_include_stop(self) -> None:
        """include_stop_str_in_output keeps the stop string."""
        text = OutputText(["queue"], include_stop=True)
        text.append("a")
        assert text.append(" queue waits") == (" queue", "queue")

    def test_partial_match_held_back_then_released(self) -> None:
        """A suffix that may grow into a stop string waits until it cannot."""
        text = OutputText(["cache hit"])
        assert text.append("the") == ("the", None)
        assert text.append(" cache") == (" ", None)
        assert text.append(" miss") == ("cache miss", None)

    def test_stop_across_pieces(self) -> None:
        """A stop string spanning two pieces is found."""
        text = OutputText(["ab c"])
        assert text.append("x ab") == ("x ", None)
        assert text.append(" cd") == ("", "ab c")
        assert text.text == "x "

    def test_flush_releases_held_text(self) -> None:
        """On length, the held-back tail is sent."""
        text = OutputText(["cache hit"])
        assert text.append("a cache") == ("a ", None)
        assert text.flush() == "cache"
        assert text.flush() == ""

    def test_earliest_stop_wins(self) -> None:
        """Among several stop strings the earliest match cuts."""
        text = OutputText(["b", "a"])
        assert text.append("xab") == ("x", "a")
