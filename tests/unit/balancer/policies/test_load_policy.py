"""Load scoring with engine figures (fake clock), and the load policy built on it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gllm.balancer.engine_load import EngineFigures, EngineLoadTable
from gllm.balancer.policies import RoutingContext
from gllm.balancer.policies.load import LoadAware
from gllm.balancer.policies.scoring import EngineLoadScorer, EngineWeights, InFlightScorer
from tests.unit.balancer.policies.fakes import FakeClock, make_workers

CTX = RoutingContext()


@pytest.fixture
def clock() -> FakeClock:
    """A clock for the table."""
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> EngineLoadTable:
    """Engine figures that go stale after 5 s."""
    return EngineLoadTable(max_age=5.0, clock=clock)


@pytest.mark.unit
class TestEngineLoadTable:
    """Fresh figures only."""

    def test_fresh_then_stale(self, table: EngineLoadTable, clock: FakeClock) -> None:
        """Figures are returned until max_age has passed."""
        table.update("http://a:1", EngineFigures(1, 2, 0.5), in_flight=1)
        assert table.get("http://a:1") is not None
        clock.advance(5.1)
        assert table.get("http://a:1") is None
        assert table.get("http://b:1") is None

    def test_forget_and_retain(self, table: EngineLoadTable) -> None:
        """Workers can be dropped one by one or all but some."""
        for name in "abc":
            table.update(f"http://{name}:1", EngineFigures(0, 0), 0)
        table.forget("http://a:1")
        table.retain(["http://b:1"])
        assert len(table) == 1
        assert table.get("http://b:1") is not None

    def test_external_load(self, table: EngineLoadTable) -> None:
        """Engine requests beyond ours at scrape time are someone else's; never negative."""
        table.update("http://a:1", EngineFigures(running=6, waiting=2), in_flight=3)
        table.update("http://b:1", EngineFigures(running=1, waiting=0), in_flight=3)
        a, b = table.get("http://a:1"), table.get("http://b:1")
        assert a is not None
        assert a.external == 5
        assert b is not None
        assert b.external == 0

    def test_max_age_positive(self) -> None:
        """A zero max age is refused."""
        with pytest.raises(ValueError, match="max_age"):
            EngineLoadTable(max_age=0)


@pytest.mark.unit
class TestEngineLoadScorer:
    """in_flight + external + waiting_weight * waiting + KV pressure."""

    def test_formula(self, table: EngineLoadTable) -> None:
        """Each term as documented."""
        workers = make_workers(3, {0: 2, 1: 2, 2: 2})
        table.update(workers[0].address, EngineFigures(running=2, waiting=0, kv_usage=0.1), in_flight=2)
        table.update(workers[1].address, EngineFigures(running=4, waiting=3, kv_usage=0.75), in_flight=2)
        scorer = EngineLoadScorer(table, EngineWeights(waiting=1.0, kv=4.0, kv_floor=0.5))
        # w0: 2 + 0 + 0 + 0; w1: 2 + (7 - 2) + 3 + 4 * 0.25 / 0.5; w2 (no figures): 2
        assert scorer.scores(workers) == [2.0, 12.0, 2.0]

    def test_stale_figures_count_nothing(self, table: EngineLoadTable, clock: FakeClock) -> None:
        """Old figures fall back to the in-flight count."""
        workers = make_workers(1, {0: 1})
        table.update(workers[0].address, EngineFigures(running=30, waiting=30), in_flight=0)
        clock.advance(60)
        assert EngineLoadScorer(table).scores(workers) == [1.0]

    def test_in_flight_scorer(self) -> None:
        """Without engine figures the score is the in-flight count."""
        assert InFlightScorer().scores(make_workers(2, {1: 4})) == [0.0, 4.0]


@pytest.mark.unit
class TestLoadAware:
    """The lowest score wins."""

    def test_avoids_an_engine_loaded_by_others(self, table: EngineLoadTable) -> None:
        """An engine busy with another balancer's requests is avoided although our counts are equal."""
        workers = make_workers(3)
        table.update(workers[0].address, EngineFigures(running=10, waiting=4), in_flight=0)
        policy = LoadAware(EngineLoadScorer(table), random.Random(0))
        chosen = Counter(policy.choose(workers, CTX).address for _ in range(100))
        assert workers[0].address not in chosen
        assert len(chosen) == 2

    def test_queue_depth_outweighs_running(self, table: EngineLoadTable) -> None:
        """With equal in-flight counts, a worker whose engine queues is avoided (a smaller batch limit)."""
        workers = make_workers(2, {0: 8, 1: 8})
        table.update(workers[0].address, EngineFigures(running=4, waiting=4), in_flight=8)
        table.update(workers[1].address, EngineFigures(running=8, waiting=0), in_flight=8)
        assert LoadAware(EngineLoadScorer(table), random.Random(0)).choose(workers, CTX) is workers[1]

    def test_in_flight_moves_the_choice_between_scrapes(self, table: EngineLoadTable) -> None:
        """Fresh in-flight counts keep requests from herding onto the worker that looked idlest."""
        workers = make_workers(2)
        for w in workers:
            table.update(w.address, EngineFigures(0, 0), in_flight=0)
        policy = LoadAware(EngineLoadScorer(table), random.Random(0))
        for _ in range(10):
            policy.choose(workers, CTX).in_flight += 1
        assert [w.in_flight for w in workers] == [5, 5]

    def test_ties_at_random_but_seeded(self) -> None:
        """Equal scores: each tied worker sometimes, the same sequence for the same seed."""
        workers = make_workers(3)
        one, two = (
            LoadAware(InFlightScorer(), random.Random(5)),
            LoadAware(InFlightScorer(), random.Random(5)),
        )
        picks = [one.choose(workers, CTX) for _ in range(30)]
        again = [two.choose(workers, CTX) for _ in range(30)]
        assert picks == again
        assert len(set(map(id, picks))) == 3
