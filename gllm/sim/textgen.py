"""Deterministic text: a seeded sampler over a small vocabulary and stop-string handling.

Sampling: temperature 0 is greedy, so the text depends on the prompt only (every choice of `n` is the
same); with a temperature > 0 and a `seed`, it depends on seed, prompt and choice index; without a seed it
comes from the engine's RNG (itself seeded by the engine's `seed`). Each sampled word is one token of the
simulated tokenizer, so re-tokenizing the output gives back `completion_tokens`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gllm.sim.tokenizer import token_id

VOCABULARY: tuple[str, ...] = (
    "the", "a", "model", "token", "cache", "prefix", "request", "worker", "balancer", "engine",
    "batch", "queue", "latency", "stream", "prompt", "answer", "fast", "slow", "simple", "small",
    "large", "is", "are", "was", "will", "can", "may", "runs", "serves", "routes", "waits", "sends",
    "and", "or", "but", "so", "then", "of", "to", "in", "on", "for", "with", "from", "by", "at",
    "GPU", "CPU", "memory", "block", "step", "time", "every", "each", "one", "two", "many", "more",
    ",", ",", ".", ".",
)  # fmt: skip
PUNCTUATION = frozenset({",", "."})


def request_seed(prompt_ids: Sequence[int], seed: int | None, index: int, greedy: bool) -> int | None:
    """Seed of one sequence's sampler, or None when it must come from the engine RNG."""
    # Hashes of int tuples (unlike str) are not salted per process: a request gives the same text anywhere.
    if greedy:
        return hash((0, tuple(prompt_ids)))
    if seed is not None:
        return hash((1, seed, index, tuple(prompt_ids)))
    return None


class TokenSampler:
    """Draws the tokens of one sequence."""

    __slots__ = ("_first", "_leading_space", "_rng")

    def __init__(self, seed: int, leading_space: bool) -> None:
        self._rng = random.Random(seed)
        self._first = True
        self._leading_space = leading_space

    def next_token(self) -> tuple[int, str]:
        """Id and text piece of the next token (the piece carries its separating space)."""
        token = self._rng.choice(VOCABULARY)
        if token in PUNCTUATION or (self._first and not self._leading_space):
            piece = token
        else:
            piece = " " + token
        self._first = False
        return token_id(token), piece

    def ends_here(self, probability: float) -> bool:
        """Whether the model emits end-of-sequence now."""
        return probability > 0.0 and self._rng.random() < probability


class OutputText:
    """Accumulates a sequence's text, cuts it at the first stop string, holds back partial stop matches."""

    __slots__ = ("_emitted", "_include_stop", "_longest_stop", "_stops", "text")

    def __init__(self, stops: Sequence[str], include_stop: bool = False) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._include_stop = include_stop
        self._longest_stop = max((len(stop) for stop in self._stops), default=0)
        self._emitted = 0
        self.text = ""

    def append(self, piece: str) -> tuple[str, str | None]:
        """Add a piece; return the text that is now safe to send and the stop string matched, if any."""
        start = max(0, len(self.text) - self._longest_stop + 1)
        self.text += piece
        if not self._stops:
            return self._take(len(self.text)), None
        best: tuple[int, str] | None = None
        for stop in self._stops:
            at = self.text.find(stop, start)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, stop)
        if best is not None:
            at, stop = best
            self.text = self.text[: at + len(stop)] if self._include_stop else self.text[:at]
            return self._take(len(self.text)), stop
        return self._take(len(self.text) - self._held_back()), None

    def flush(self) -> str:
        """Everything not sent yet (when the sequence ends for another reason than a stop string)."""
        return self._take(len(self.text))

    def _held_back(self) -> int:
        """Length of the longest suffix of the text that could still grow into a stop string."""
        text = self.text
        for size in range(min(self._longest_stop - 1, len(text) - self._emitted), 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0

    def _take(self, upto: int) -> str:
        delta = self.text[self._emitted : upto]
        self._emitted = max(self._emitted, upto)
        return delta
