"""Session affinity: key sources, stickiness, bounded-load spill, fallback, membership changes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gllm.balancer.policies import RoutingContext
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.policies.scoring import InFlightScorer
from gllm.balancer.policies.session import KeySource, SessionAffinity, session_key
from tests.unit.balancer.policies.fakes import chat, make_workers

DEFAULT_SOURCES = [KeySource.parse(s) for s in ("header:x-session-id", "body:session_id", "body:user")]


def session_policy(load_factor: float = 1.5, slack: float = 4.0, seed: int = 0) -> SessionAffinity:
    """A session policy on in-flight counts with a seeded least-busy fallback."""
    return SessionAffinity(
        InFlightScorer(), LeastBusy(5, random.Random(seed)), load_factor=load_factor, slack=slack
    )


@pytest.mark.unit
class TestSessionKey:
    """Where the key comes from."""

    def test_header_first(self) -> None:
        """X-Session-ID wins over body fields."""
        ctx = chat("hi", session="s-1", user="alice", session_id="s-2")
        assert session_key(ctx, DEFAULT_SOURCES) == "s-1"

    def test_body_fields_in_order(self) -> None:
        """Without the header, session_id, then user."""
        assert session_key(chat("hi", user="alice", session_id="s-2"), DEFAULT_SOURCES) == "s-2"
        assert session_key(chat("hi", user="alice"), DEFAULT_SOURCES) == "alice"
        assert session_key(chat("hi", user=42), DEFAULT_SOURCES) == "42"

    def test_no_key(self) -> None:
        """Empty or non-text values are no key."""
        assert session_key(chat("hi"), DEFAULT_SOURCES) is None
        assert session_key(chat("hi", user="", session_id={"a": 1}), DEFAULT_SOURCES) is None
        assert session_key(chat("hi", user=True), DEFAULT_SOURCES) is None
        assert session_key(chat("hi", session=""), DEFAULT_SOURCES) is None

    def test_custom_sources(self) -> None:
        """A configured header (any case) or body field."""
        sources = [KeySource.parse("Header:X-Conversation"), KeySource.parse("body:thread")]
        ctx = RoutingContext("m", {"thread": "t9"}, [(b"x-conversation", b"c1")])
        assert session_key(ctx, sources) == "c1"
        assert session_key(RoutingContext("m", {"thread": "t9"}), sources) == "t9"

    @pytest.mark.parametrize("spec", ["cookie:x", "header:", "user", ":x"])
    def test_bad_source(self, spec: str) -> None:
        """Only header:NAME and body:FIELD are understood."""
        with pytest.raises(ValueError, match="header:NAME or body:FIELD"):
            KeySource.parse(spec)


@pytest.mark.unit
class TestStickiness:
    """The same key, the same worker."""

    def test_same_key_same_worker(self) -> None:
        """Fifty requests of one session all land on one worker, while it is under the bound."""
        workers = make_workers(8)
        policy = session_policy()
        assert len({policy.choose(workers, chat("hi", session="alice")).address for _ in range(50)}) == 1

    def test_sessions_spread(self) -> None:
        """Many sessions use every worker."""
        workers = make_workers(8)
        policy = session_policy()
        chosen = Counter(policy.choose(workers, chat("x", session=f"s{i}")).address for i in range(800))
        assert len(chosen) == 8
        assert min(chosen.values()) > 40

    def test_agrees_across_instances(self) -> None:
        """Two balancers (two policy objects) send a session to the same worker."""
        workers = make_workers(8)
        one, two = session_policy(seed=1), session_policy(seed=2)
        for i in range(50):
            ctx = chat("x", session=f"s{i}")
            assert one.choose(workers, ctx) is two.choose(workers, ctx)

    def test_keyless_requests_go_least_busy(self) -> None:
        """No key: the least busy worker (the fallback)."""
        workers = make_workers(3, {0: 5, 1: 0, 2: 7})
        assert session_policy().choose(workers, chat("hi")) is workers[1]


@pytest.mark.unit
class TestBoundedLoad:
    """A hot session spills to the next worker on the ring instead of sinking its own."""

    def test_spills_when_over_the_bound(self) -> None:
        """Over load_factor * mean + slack the next worker clockwise takes the session; back when it drains."""
        workers = make_workers(4)
        policy = session_policy(load_factor=1.5, slack=1.0)
        ctx = chat("x", session="hot")
        home = policy.choose(workers, ctx)
        ring_order = list(policy.ring.walk("hot"))
        assert home.address == ring_order[0]
        home.in_flight = 3  # mean 0.75: bound 1.5 * 0.75 + 1 = 2.125
        spill = policy.choose(workers, ctx)
        assert spill.address == ring_order[1]
        home.in_flight = 2  # mean 0.5: bound 1.75 -> still over
        assert policy.choose(workers, ctx).address == ring_order[1]
        home.in_flight = 1  # mean 0.25: bound 1.375 -> home again
        assert policy.choose(workers, ctx) is home

    def test_load_follows_the_bound_under_a_hot_session(self) -> None:
        """Feeding one session forever (requests never finish) keeps every worker within the bound."""
        workers = make_workers(4)
        policy = session_policy(load_factor=1.25, slack=1.0)
        for _ in range(400):
            policy.choose(workers, chat("x", session="hot")).in_flight += 1
        loads = [w.in_flight for w in workers]
        assert max(loads) <= 1.25 * 100 + 2
        assert min(loads) > 0

    def test_all_over_the_bound_takes_the_least_loaded(self) -> None:
        """With slack 0 and equal loads nobody is under the bound: the least loaded, first in ring order."""
        workers = make_workers(3, {0: 2, 1: 2, 2: 2})
        policy = session_policy(load_factor=1.0, slack=0.0)
        chosen = policy.choose(workers, chat("x", session="s"))
        assert chosen.address == next(policy.ring.walk("s"))

    def test_load_factor_below_one_refused(self) -> None:
        """A bound under the mean could never be met."""
        with pytest.raises(ValueError, match="load_factor"):
            session_policy(load_factor=0.9)


@pytest.mark.unit
class TestMembership:
    """Workers that leave, come back, or are not candidates."""

    def test_unavailable_worker_moves_only_its_sessions(self) -> None:
        """Without one worker only its sessions move, and they come back when it returns."""
        workers = make_workers(6)
        policy = session_policy()
        keys = [f"s{i}" for i in range(600)]
        before = {k: policy.choose(workers, chat("x", session=k)) for k in keys}
        gone = workers[2]
        others = [w for w in workers if w is not gone]
        during = {k: policy.choose(others, chat("x", session=k)) for k in keys}
        moved = [k for k in keys if during[k] is not before[k]]
        assert moved == [k for k in keys if before[k] is gone]
        after = {k: policy.choose(workers, chat("x", session=k)) for k in keys}
        assert after == before

    def test_new_worker_takes_about_its_share(self) -> None:
        """A seventh worker takes about 1/7 of the sessions, and only sessions move to it."""
        workers = make_workers(7)
        policy = session_policy()
        keys = [f"s{i}" for i in range(700)]
        before = {k: policy.choose(workers[:6], chat("x", session=k)) for k in keys}
        after = {k: policy.choose(workers, chat("x", session=k)) for k in keys}
        moved = [k for k in keys if after[k] is not before[k]]
        assert all(after[k] is workers[6] for k in moved)
        assert 40 < len(moved) < 170

    def test_forget_takes_the_worker_off_the_ring(self) -> None:
        """A removed worker's points leave the ring."""
        workers = make_workers(3)
        policy = session_policy()
        policy.choose(workers, chat("x", session="a"))
        policy.forget(workers[0].address)
        assert workers[0].address not in policy.ring
        assert len(policy.ring) == 2

    def test_single_candidate(self) -> None:
        """One candidate is always the answer."""
        workers = make_workers(1, {0: 100})
        assert session_policy().choose(workers, chat("x", session="s")) is workers[0]
