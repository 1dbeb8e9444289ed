"""Round robin and random: no load, no state beyond a counter or a seeded generator."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gllm.balancer.policies import RoutingContext
from gllm.balancer.policies.random_choice import RandomChoice
from gllm.balancer.policies.round_robin import RoundRobin
from tests.unit.balancer.policies.fakes import make_workers

CTX = RoutingContext()


@pytest.mark.unit
class TestRoundRobin:
    """Candidates in turn."""

    def test_cycles_in_order_whatever_the_load(self) -> None:
        """Three workers, six requests: each twice, in registration order, even the busiest."""
        workers = make_workers(3, {0: 50})
        policy = RoundRobin()
        assert [policy.choose(workers, CTX).address for _ in range(6)] == [w.address for w in workers] * 2

    def test_follows_a_changing_candidate_list(self) -> None:
        """A shorter list (a worker excluded) is still served evenly."""
        workers = make_workers(3)
        policy = RoundRobin()
        chosen = Counter(policy.choose(workers[:2], CTX).address for _ in range(10))
        assert chosen == Counter({workers[0].address: 5, workers[1].address: 5})


@pytest.mark.unit
class TestRandom:
    """Uniform and reproducible with a seed."""

    def test_uniform_and_seeded(self) -> None:
        """Every worker gets about a quarter; the same seed gives the same sequence."""
        workers = make_workers(4, {0: 99})
        one, two = RandomChoice(random.Random(7)), RandomChoice(random.Random(7))
        assert [one.choose(workers, CTX) for _ in range(20)] == [two.choose(workers, CTX) for _ in range(20)]
        policy = RandomChoice(random.Random(3))
        counts = Counter(policy.choose(workers, CTX).address for _ in range(4000))
        assert all(800 < n < 1200 for n in counts.values())
        assert len(counts) == 4
