"""Prefix-aware routing: longest match, least loaded among equals, imbalance fallback, membership."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gllm.balancer.engine_load import EngineFigures, EngineLoadTable
from gllm.balancer.policies.prefix import Balance, PrefixAffinity
from gllm.balancer.policies.prompt import prompt_text
from gllm.balancer.policies.scoring import EngineLoadScorer, InFlightScorer
from gllm.balancer.prefix_index import PrefixIndex
from tests.unit.balancer.policies.fakes import FakeClock, chat, make_workers

SYSTEM = "You are a careful assistant. " * 40  # about 1,200 characters: 18 blocks of 64


def prefix_policy(balance: Balance | None = None, seed: int = 0) -> PrefixAffinity:
    """A prefix policy on in-flight counts."""
    return PrefixAffinity(InFlightScorer(), PrefixIndex(), balance or Balance(), random.Random(seed))


def _text(*contents: str) -> str:
    """The routing text of a chat with these messages."""
    return prompt_text(chat(*contents).body)


@pytest.mark.unit
class TestLongestMatch:
    """The worker that was sent the prefix gets the next request with it."""

    def test_shared_system_prompt_sticks(self) -> None:
        """Many questions under one system prompt all go where the first went (loads stay balanced)."""
        workers = make_workers(4)
        policy = prefix_policy()
        first = policy.choose(workers, chat(SYSTEM + "question 0"))
        for i in range(1, 30):
            assert policy.choose(workers, chat(SYSTEM + f"question {i}")) is first

    def test_conversation_follows_its_history(self) -> None:
        """Turn two of a conversation goes to the worker that served turn one, even when busier."""
        workers = make_workers(3)
        policy = prefix_policy()
        turn1 = ["Tell me about the sea. " * 20]
        home = policy.choose(workers, chat(*turn1))
        home.in_flight = 3  # busier than the others, but within the thresholds
        assert policy.choose(workers, chat(*turn1, "It is large. " * 10, "And rivers?")) is home

    def test_deepest_match_wins(self) -> None:
        """A worker holding a longer prefix beats one holding a shorter one."""
        workers = make_workers(3)
        policy = prefix_policy()
        history = "We talked about boats. " * 30
        policy.index.insert(workers[0].address, policy.index.hashes(_text(SYSTEM)))
        policy.index.insert(workers[1].address, policy.index.hashes(_text(SYSTEM, history)))
        workers[1].in_flight = 2
        assert policy.choose(workers, chat(SYSTEM, history, "and ships?")) is workers[1]
        assert policy.choose(workers, chat(SYSTEM, "a new topic")) is workers[0]

    def test_equal_matches_go_to_the_least_loaded(self) -> None:
        """When several workers hold the prefix, the least loaded of them is taken."""
        workers = make_workers(4, {0: 5, 1: 2, 2: 0, 3: 0})
        policy = prefix_policy()
        hashes = policy.index.hashes(_text(SYSTEM + "q"))
        for w in workers[:2]:
            policy.index.insert(w.address, hashes)
        assert policy.choose(workers, chat(SYSTEM + "another q")) is workers[1]

    def test_choice_is_recorded(self) -> None:
        """After a choice the index holds the prompt's blocks for that worker."""
        workers = make_workers(2)
        policy = prefix_policy()
        chosen = policy.choose(workers, chat(SYSTEM))
        assert policy.index.blocks(chosen.address) == len(_text(SYSTEM)) // 64


@pytest.mark.unit
class TestBalance:
    """Load wins over the cache past the thresholds."""

    def test_overloaded_match_falls_back_to_least_loaded(self) -> None:
        """Past both thresholds the least loaded worker is chosen (and now holds the prefix too)."""
        workers = make_workers(3)
        policy = prefix_policy(Balance(abs_threshold=4, rel_threshold=1.5))
        home = policy.choose(workers, chat(SYSTEM + "a"))
        home.in_flight = 5  # 5 - 0 > 4 and 5 > 0 * 1.5
        other = policy.choose(workers, chat(SYSTEM + "b"))
        assert other is not home
        home.in_flight = 4  # 4 - 0 is not > 4: the cache wins again, least loaded of the two holders
        other.in_flight = 1
        assert policy.choose(workers, chat(SYSTEM + "c")) is other
        other.in_flight = 4
        assert policy.choose(workers, chat(SYSTEM + "d")) in (home, other)

    def test_spill_prefers_a_partial_match(self) -> None:
        """When the deepest holder is overloaded, a worker holding part of the prompt beats a cold one."""
        workers = make_workers(3)
        policy = prefix_policy(Balance(abs_threshold=2, rel_threshold=1.5))
        history = "We talked about boats. " * 30
        policy.index.insert(workers[0].address, policy.index.hashes(_text(SYSTEM, history)))
        policy.index.insert(workers[1].address, policy.index.hashes(_text(SYSTEM)))
        workers[0].in_flight, workers[1].in_flight = 6, 1  # w0 overloaded against the idle w2
        assert policy.choose(workers, chat(SYSTEM, history, "more?")) is workers[1]

    def test_relative_threshold_must_also_be_exceeded(self) -> None:
        """A large absolute gap between busy workers is not an imbalance when the ratio is small."""
        workers = make_workers(2, {0: 0, 1: 0})
        policy = prefix_policy(Balance(abs_threshold=4, rel_threshold=1.5))
        home = policy.choose(workers, chat(SYSTEM))
        other = workers[1] if home is workers[0] else workers[0]
        home.in_flight, other.in_flight = 28, 20  # gap 8 > 4 but 28 < 20 * 1.5
        assert policy.choose(workers, chat(SYSTEM + "x")) is home

    def test_short_match_is_ignored(self) -> None:
        """Under cache_threshold of the prompt matched, the least loaded worker is taken."""
        workers = make_workers(2)
        policy = prefix_policy(Balance(cache_threshold=0.5))
        home = policy.choose(workers, chat(SYSTEM))
        home.in_flight = 1
        long_tail = SYSTEM + "completely different material " * 60
        assert policy.choose(workers, chat(long_tail)) is not home

    def test_no_match_spreads_new_prefixes(self) -> None:
        """Among equally idle workers a new prefix goes to the one holding the fewest blocks."""
        workers = make_workers(4)
        policy = prefix_policy()
        homes = [policy.choose(workers, chat(f"{i} " + SYSTEM)) for i in range(4)]
        assert len(set(homes)) == 4

    def test_engine_scores_replace_in_flight(self) -> None:
        """With engine figures the imbalance is judged on them (a queue elsewhere counts)."""
        clock = FakeClock()
        table = EngineLoadTable(max_age=5, clock=clock)
        workers = make_workers(2)
        policy = PrefixAffinity(
            EngineLoadScorer(table), PrefixIndex(), Balance(abs_threshold=4), random.Random(0)
        )
        home = policy.choose(workers, chat(SYSTEM))
        table.update(home.address, EngineFigures(running=8, waiting=6, kv_usage=0.2), in_flight=0)
        assert policy.choose(workers, chat(SYSTEM + "x")) is not home
        clock.advance(10)  # the figures are stale now: in-flight counts alone, both idle
        assert policy.choose(workers, chat(SYSTEM + "y")) in workers


@pytest.mark.unit
class TestMembership:
    """Workers that are not candidates, leave, or join."""

    def test_non_candidates_are_ignored(self) -> None:
        """A holder that is not a candidate (ejected, loading, tried) does not attract the request."""
        workers = make_workers(3)
        policy = prefix_policy()
        home = policy.choose(workers, chat(SYSTEM))
        rest = [w for w in workers if w is not home]
        assert policy.choose(rest, chat(SYSTEM + "x")) in rest

    def test_forget_purges_a_removed_worker(self) -> None:
        """After forget the worker holds nothing; a new worker at the same address starts empty."""
        workers = make_workers(2)
        policy = prefix_policy()
        home = policy.choose(workers, chat(SYSTEM))
        policy.forget(home.address)
        assert policy.index.blocks(home.address) == 0

    def test_many_workers_spread_under_load(self) -> None:
        """One hot prefix with requests that never finish spreads over several workers, bounded by the thresholds."""
        workers = make_workers(4)
        policy = prefix_policy(Balance(abs_threshold=3, rel_threshold=1.2))
        for i in range(100):
            policy.choose(workers, chat(SYSTEM + f"q{i}")).in_flight += 1
        loads = Counter({w.address: w.in_flight for w in workers})
        assert max(loads.values()) - min(loads.values()) <= 4

    def test_single_candidate_and_empty_prompt(self) -> None:
        """One candidate is the answer; an empty body routes by load."""
        workers = make_workers(2, {0: 3})
        policy = prefix_policy()
        assert policy.choose(workers[:1], chat(SYSTEM)) is workers[0]
        assert policy.choose(workers, chat()) is workers[1]
