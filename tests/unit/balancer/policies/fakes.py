"""Shared helpers of the policy unit tests: worker records with given loads, a fake clock, contexts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gllm.balancer.policies import RoutingContext
from gllm.balancer.registry import Registry, Worker


def make_workers(count: int, loads: Mapping[int, int] | None = None) -> list[Worker]:
    """`count` workers http://w0:8000.. with in-flight counts from `loads` (index -> count, default 0)."""
    registry = Registry()
    workers = [registry.add(f"http://w{i}:8000")[0] for i in range(count)]
    for i, in_flight in (loads or {}).items():
        workers[i].in_flight = in_flight
    return workers


def chat(*contents: str, session: str | None = None, **body: Any) -> RoutingContext:
    """A chat request context: alternating user/assistant messages, an optional X-Session-ID header."""
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": text} for i, text in enumerate(contents)]
    headers = [(b"x-session-id", session.encode())] if session is not None else []
    return RoutingContext("m", {"model": "m", "messages": messages, **body}, headers)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
