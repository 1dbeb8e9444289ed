"""Session: requests with the same session key stick to one worker (consistent hashing with bounded load)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gllm.balancer.policies.base import LoadScorer, Policy, RoutingContext
from gllm.balancer.policies.hash_ring import HashRing
from gllm.balancer.registry import Worker

DEFAULT_KEY_SOURCES = ("header:x-session-id", "body:session_id", "body:user")
MAX_KEY_CHARS = 1024


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a session key is read: a request header or a top-level field of the JSON body."""

    kind: str  # "header" or "body"
    name: str

    @classmethod
    def parse(cls, spec: str) -> KeySource:
        """`header:NAME` or `body:FIELD`; ValueError otherwise."""
        kind, sep, name = spec.strip().partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in ("header", "body") or not name.strip():
            raise ValueError(f"session key source {spec!r} must be header:NAME or body:FIELD")
        name = name.strip()
        return cls(kind, name.lower() if kind == "header" else name)

    def read(self, ctx: RoutingContext) -> str | None:
        """The key this source finds in a request, if any."""
        if self.kind == "header":
            raw = ctx.header(self.name.encode("latin-1"))
            key = raw.decode("latin-1").strip() if raw is not None else None
        else:
            value = ctx.body.get(self.name)
            key = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        return key[:MAX_KEY_CHARS] if key else None


def session_key(ctx: RoutingContext, sources: Sequence[KeySource]) -> str | None:
    """The first key found, trying the sources in order."""
    for source in sources:
        key = source.read(ctx)
        if key is not None:
            return key
    return None


class SessionAffinity:
    """A keyed request goes to the first worker clockwise from its key that is under the load bound.

    The bound is `load_factor * mean load + slack` over the candidates (loads from the scorer), so a hot
    session spills to the next worker on the ring instead of sinking its own. Requests without a key, or with
    every worker over the bound, go to the fallback policy / the least loaded worker.
    """

    name: ClassVar[str] = "session"

    def __init__(
        self,
        scorer: LoadScorer,
        fallback: Policy,
        sources: Sequence[KeySource] | None = None,
        load_factor: float = 1.5,
        slack: float = 4.0,
        virtual_nodes: int = 160,
    ) -> None:
        if load_factor < 1.0:
            raise ValueError("load_factor must be at least 1")
        self.scorer = scorer
        self.fallback = fallback
        self.sources = tuple(sources or (KeySource.parse(spec) for spec in DEFAULT_KEY_SOURCES))
        self.load_factor = load_factor
        self.slack = slack
        self.ring = HashRing(virtual_nodes)

    def choose(self, candidates: Sequence[Worker], ctx: RoutingContext) -> Worker:
        """The session's worker, or the next one under the bound; no key: the fallback's choice."""
        key = session_key(ctx, self.sources)
        if key is None:
            return self.fallback.choose(candidates, ctx)
        if len(candidates) == 1:
            return candidates[0]
        self.ring.add(w.address for w in candidates)
        scores = self.scorer.scores(candidates)
        bound = self.load_factor * sum(scores) / len(scores) + self.slack
        index = {w.address: i for i, w in enumerate(candidates)}
        lightest: int | None = None  # the least loaded seen so far, in ring order (ties: the earlier)
        for address in self.ring.walk(key):
            i = index.get(address)
            if i is None:
                continue  # on the ring but not a candidate now (not ready, already tried, other model)
            if scores[i] < bound:
                return candidates[i]
            if lightest is None or scores[i] < scores[lightest]:
                lightest = i
        assert lightest is not None  # every candidate was just put on the ring
        return candidates[lightest]

    def forget(self, address: str) -> None:
        """Take a removed worker off the ring: only its sessions move."""
        self.ring.remove(address)
        self.fallback.forget(address)
