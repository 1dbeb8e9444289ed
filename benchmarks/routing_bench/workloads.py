"""The five routing workloads: deterministic requests (fixed seeds, bounded counts) and how they arrive."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

MODEL = "sim-model"
_SYLLABLES = ("ka", "lo", "mi", "ra", "tu", "ne", "so", "vi", "de", "pa", "gu", "ze", "ri", "mo", "ta", "be")


def words(rng: random.Random, count: int) -> str:
    """`count` pseudo-words (one simulated token each) separated by spaces."""
    return " ".join("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(count))


@dataclass(frozen=True)
class Request:
    """One independent chat request."""

    messages: list[dict[str, str]]
    max_tokens: int
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body, streamed with usage."""
        return {
            "model": MODEL,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }


@dataclass(frozen=True)
class Session:
    """One user's conversation: turn i sends the history, the answers so far and user_turns[i]."""

    key: str
    system: str
    user_turns: list[str]
    max_tokens: list[int]


@dataclass(frozen=True)
class Workload:
    """A named load: closed loop (`concurrency` at a time), sessions, or open-loop Poisson arrivals."""

    key: str
    title: str
    mode: str  # "closed", "sessions" or "poisson"
    requests: list[Request] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    concurrency: int = 0
    rate: float = 0.0  # arrivals per second (poisson)
    slow_engines: int = 0  # the last N engines run at speed / 3

    @property
    def count(self) -> int:
        """Requests in the workload."""
        return len(self.requests) + sum(len(s.user_turns) for s in self.sessions)


def short_chats(rng: random.Random, count: int) -> list[Request]:
    """Independent chats: 40-200 token prompts, 8-24 tokens out, nothing shared."""
    return [
        Request([{"role": "user", "content": words(rng, rng.randint(40, 200))}], rng.randint(8, 24))
        for _ in range(count)
    ]


def w1_independent(scale: float, capacity: float, seed: int = 1) -> Workload:
    """Independent short chats arriving (Poisson) at 85% of the cluster's capacity."""
    rng = random.Random(seed)
    return Workload(
        "w1", "independent short chats", "poisson", short_chats(rng, int(400 * scale)), rate=0.85 * capacity
    )


def w2_multiturn(scale: float, seed: int = 2) -> Workload:
    """48 users, 5 turns each, every turn resends the history (X-Session-ID set); one shared app prompt."""
    rng = random.Random(seed)
    app_prompt = "You are the help desk of a simulated company. " + words(rng, 300)
    sessions = [
        Session(
            key=f"user-{u:03d}",
            system=app_prompt,
            user_turns=[words(rng, rng.randint(60, 120)) for _ in range(5)],
            max_tokens=[rng.randint(12, 24) for _ in range(5)],
        )
        for u in range(max(8, int(48 * scale)))
    ]
    return Workload("w2", "multi-turn conversations", "sessions", sessions=sessions)


def w3_shared_prefixes(scale: float, seed: int = 3) -> Workload:
    """Six long system prompts / few-shot templates (2-4k tokens) under many short questions, concurrency 64."""
    rng = random.Random(seed)
    templates = [f"Template {t}. " + words(rng, rng.randint(2000, 4000)) for t in range(6)]
    requests = [
        Request(
            [
                {"role": "system", "content": rng.choice(templates)},
                {"role": "user", "content": words(rng, rng.randint(10, 40))},
            ],
            rng.randint(8, 24),
        )
        for _ in range(int(400 * scale))
    ]
    return Workload("w3", "long shared prefixes", "closed", requests, concurrency=64)


def w4_heterogeneous(scale: float, capacity: float, seed: int = 4) -> Workload:
    """Short chats arriving at 85% of the capacity of a cluster whose last two engines are 3x slower."""
    rng = random.Random(seed)
    slow_capacity = capacity * (6 + 2 / 3) / 8
    return Workload(
        "w4",
        "heterogeneous workers near saturation",
        "poisson",
        short_chats(rng, int(400 * scale)),
        rate=0.85 * slow_capacity,
        slow_engines=2,
    )


def w5_burst(scale: float, capacity: float, seed: int = 5) -> Workload:
    """A burst: short chats arriving at 1.5x the cluster's capacity."""
    rng = random.Random(seed)
    return Workload(
        "w5", "burst at 1.5x capacity", "poisson", short_chats(rng, int(400 * scale)), rate=1.5 * capacity
    )


def all_workloads(scale: float, capacity: float) -> list[Workload]:
    """Every workload, in order."""
    return [
        w1_independent(scale, capacity),
        w2_multiturn(scale),
        w3_shared_prefixes(scale),
        w4_heterogeneous(scale, capacity),
        w5_burst(scale, capacity),
    ]
