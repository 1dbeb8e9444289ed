"""The least-busy policy on its own, with a seeded random generator."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gllm.balancer.policies import POLICIES, RoutingContext, make_policy
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.registry import Registry, Worker

CTX = RoutingContext()


def workers_with_loads(loads: dict[str, int]) -> list[Worker]:
    """Worker records with the given in-flight counts, in the given order."""
    registry = Registry()
    for address, in_flight in loads.items():
        registry.add(address)[0].in_flight = in_flight
    return registry.all()


@pytest.mark.unit
class TestLeastBusy:
    """The fewest in-flight requests wins; ties and sampling are random but seeded."""

    @pytest.mark.parametrize(
        ("loads", "expected"),
        [
            ({"http://w1:8000": 0, "http://w2:8000": 5}, "http://w1:8000"),
            ({"http://w1:8000": 3, "http://w2:8000": 1}, "http://w2:8000"),
            ({"http://w1:8000": 7}, "http://w1:8000"),
            ({"http://w1:8000": 4, "http://w2:8000": 2, "http://w3:8000": 9}, "http://w2:8000"),
            ({f"http://w{i}:8000": 10 - i for i in range(5)}, "http://w4:8000"),
        ],
    )
    def test_picks_least_busy(self, loads: dict[str, int], expected: str) -> None:
        """With no more workers than the check size the least busy one is always chosen."""
        policy = LeastBusy(check_size=5, rng=random.Random(0))
        workers = workers_with_loads(loads)
        assert {policy.choose(workers, CTX).address for _ in range(50)} == {expected}

    def test_ties_are_broken_at_random(self) -> None:
        """Every tied worker gets chosen sometimes; a busier one never does."""
        policy = LeastBusy(check_size=5, rng=random.Random(1))
        workers = workers_with_loads({"http://a:1": 1, "http://b:1": 1, "http://c:1": 5, "http://d:1": 1})
        chosen = Counter(policy.choose(workers, CTX).address for _ in range(600))
        assert set(chosen) == {"http://a:1", "http://b:1", "http://d:1"}
        assert min(chosen.values()) > 100

    def test_samples_check_size_workers(self) -> None:
        """With check_size=2 of 5 workers the idlest is chosen only when sampled (about 2/5 of the time)."""
        policy = LeastBusy(check_size=2, rng=random.Random(2))
        workers = workers_with_loads({f"http://w{i}:1": i for i in range(5)})
        chosen = Counter(policy.choose(workers, CTX).address for _ in range(2000))
        assert "http://w4:1" not in chosen  # any sample of two holds a less busy worker
        assert 0.3 < chosen["http://w0:1"] / 2000 < 0.5

    def test_check_size_one_is_uniform(self) -> None:
        """check_size=1 ignores load: every worker is chosen."""
        policy = LeastBusy(check_size=1, rng=random.Random(3))
        workers = workers_with_loads({"http://a:1": 0, "http://b:1": 50, "http://c:1": 99})
        assert {policy.choose(workers, CTX).address for _ in range(200)} == {
            "http://a:1",
            "http://b:1",
            "http://c:1",
        }

    def test_same_seed_same_choices(self) -> None:
        """Two policies with the same seed make the same choices."""
        workers = workers_with_loads({f"http://w{i}:1": i % 3 for i in range(8)})
        first, second = LeastBusy(3, random.Random(42)), LeastBusy(3, random.Random(42))
        assert [first.choose(workers, CTX) for _ in range(100)] == [
            second.choose(workers, CTX) for _ in range(100)
        ]


@pytest.mark.unit
class TestPolicyTable:
    """Policies are built by name from one table."""

    def test_least_busy_is_registered(self) -> None:
        """`least_busy` builds a LeastBusy with the given check size."""
        assert "least_busy" in POLICIES
        policy = make_policy("least_busy", 3, random.Random(0))
        assert isinstance(policy, LeastBusy)
        assert policy.check_size == 3

    def test_unknown_name(self) -> None:
        """An unknown name raises ValueError listing the known ones."""
        with pytest.raises(ValueError, match="least_busy"):
            make_policy("round_robin_nope", 3, random.Random(0))
