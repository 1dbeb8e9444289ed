"""Each routing policy on a real balancer in front of real simulated engines, over HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gllm.balancer.engine_load import EngineLoad, EngineLoadTable
from gllm.testing.net import wait_until
from tests.integration.routing.conftest import Routed

SYSTEM = "You are the archivist of a very long and detailed library catalogue. " * 30
Factory = Callable[..., Routed]


def busiest(served: dict[str, int]) -> tuple[str, int]:
    """The engine that got the most requests, and how many."""
    address = max(served, key=lambda a: served[a])
    return address, served[address]


@pytest.mark.integration
class TestSimplePolicies:
    """round_robin, random and least_busy through the balancer."""

    def test_round_robin_even(self, routed: Factory) -> None:
        """Nine requests over three engines: three each."""
        cluster = routed("round_robin", engines=3)
        for i in range(9):
            cluster.chat(f"hello {i}")
        assert sorted(cluster.served().values()) == [3, 3, 3]

    def test_random_uses_every_engine(self, routed: Factory) -> None:
        """Forty requests over four engines reach each of them (seeded balancer)."""
        cluster = routed("random")
        for i in range(40):
            cluster.chat(f"hello {i}")
        assert all(count > 0 for count in cluster.served().values())

    def test_least_busy_spreads_open_streams(self, routed: Factory) -> None:
        """Three long generations open at once land on three different engines."""
        cluster = routed("least_busy", engines=3, decode_base_step_s=0.01)
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "long"}], "max_tokens": 60}
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda _: cluster.http.post("/v1/chat/completions", json=body), range(3)))
        assert sorted(cluster.served().values()) == [1, 1, 1]


@pytest.mark.integration
class TestSession:
    """Sticky sessions on the consistent-hash ring."""

    def test_session_sticks_and_sessions_spread(self, routed: Factory) -> None:
        """One session's requests all go to one engine; many sessions use several engines."""
        cluster = routed("session")
        for i in range(10):
            cluster.chat(f"turn {i}", headers={"X-Session-ID": "alice"})
        assert busiest(cluster.served())[1] == 10
        for i in range(30):
            cluster.chat("hi", headers={"X-Session-ID": f"user-{i}"})
        assert sum(1 for count in cluster.served().values() if count > 0) >= 3

    def test_body_user_is_a_key(self, routed: Factory) -> None:
        """Without the header the body's `user` field keeps requests together."""
        cluster = routed("session")
        for i in range(8):
            cluster.chat(f"q {i}", user="bob")
        assert busiest(cluster.served())[1] == 8

    def test_removed_worker_moves_only_its_sessions(self, routed: Factory) -> None:
        """After its engine is removed a session settles on one other engine."""
        cluster = routed("session")
        cluster.chat("first", headers={"X-Session-ID": "carol"})
        home, _ = busiest(cluster.served())
        assert cluster.http.post("/remove_worker", json={"address": home}).status_code == 200
        for i in range(6):
            cluster.chat(f"again {i}", headers={"X-Session-ID": "carol"})
        served = cluster.served()
        assert home not in served
        assert busiest(served)[1] == 6

    def test_options_reach_the_policy(self, routed: Factory) -> None:
        """A configured key source (body field) is used."""
        cluster = routed("session", options={"session_key": "body:conversation"})
        for i in range(6):
            cluster.chat(f"q {i}", conversation="c-42")
        assert busiest(cluster.served())[1] == 6


@pytest.mark.integration
class TestPrefix:
    """Cache-aware routing sends a shared prefix where it is cached."""

    def test_shared_prefix_sticks_and_hits_the_cache(self, routed: Factory) -> None:
        """Questions under one long system prompt go to one engine, whose prefix cache then hits."""
        cluster = routed("prefix")
        cached = []
        for i in range(8):
            answer = cluster.chat(
                f"question {i}",
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"question {i}"},
                ],
            )
            cached.append(answer["usage"]["prompt_tokens_details"]["cached_tokens"])
        assert busiest(cluster.served())[1] == 8
        assert cached[0] == 0
        assert min(cached[1:]) > 100

    def test_new_prefixes_spread(self, routed: Factory) -> None:
        """Four different long prompts on idle engines go to four different engines."""
        cluster = routed("prefix")
        for i in range(4):
            cluster.chat(f"{i} " + SYSTEM)
        assert sorted(cluster.served().values()) == [1, 1, 1, 1]

    def test_removed_holder_is_not_chosen(self, routed: Factory) -> None:
        """After the engine holding a prefix is removed, the prefix settles on another engine."""
        cluster = routed("prefix", options={"block_chars": "32"})
        cluster.chat(SYSTEM)
        home, _ = busiest(cluster.served())
        assert cluster.http.post("/remove_worker", json={"address": home}).status_code == 200
        for i in range(4):
            cluster.chat(SYSTEM + f" {i}")
        served = cluster.served()
        assert home not in served
        assert busiest(served)[1] == 4


@pytest.fixture
def external_load() -> Iterator[Callable[[str, int], None]]:
    """Open long streams straight to an engine (load this balancer does not see); closed after the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def hold(url: str) -> None:
        body = {
            "model": "sim-model",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 5000,
            "stream": True,
        }
        with (
            httpx.Client(timeout=60) as client,
            client.stream("POST", url + "/v1/chat/completions", json=body) as resp,
        ):
            for _ in resp.iter_raw():
                if stop.is_set():
                    return  # leaving closes the connection: the engine aborts the request

    def start(url: str, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=hold, args=(url,), daemon=True)
            thread.start()
            threads.append(thread)

    try:
        yield start
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@pytest.mark.integration
class TestLoad:
    """Engine-load-aware routing reads the engines' own metrics."""

    def test_avoids_an_engine_loaded_by_someone_else(
        self, routed: Factory, external_load: Callable[[str, int], None]
    ) -> None:
        """An engine busy with requests from elsewhere gets none of ours while its figures say so."""
        cluster = routed("load", engines=3, metrics=True, decode_base_step_s=0.005)
        busy = cluster.engines.urls[0]
        external_load(busy, 6)
        loads = cluster.loads
        assert loads is not None

        def engine_busy() -> bool:
            load = cluster.balancer.run(_get(loads, busy))
            return load is not None and load.figures.running >= 6

        wait_until(engine_busy, timeout=30, what="the scraper to see the external load")
        for i in range(9):
            cluster.chat(f"q {i}")
        served = cluster.served()
        assert served[busy] == 0
        assert sum(served.values()) == 9

    def test_prefix_reads_engine_scores(
        self, routed: Factory, external_load: Callable[[str, int], None]
    ) -> None:
        """With engine figures, a prefix's holder busy with outside work is passed over for an idle engine."""
        cluster = routed(
            "prefix",
            engines=2,
            metrics=True,
            options={"balance_abs_threshold": "2"},
            decode_base_step_s=0.005,
        )
        cluster.chat(SYSTEM)
        home, _ = busiest(cluster.served())
        external_load(home, 8)
        loads = cluster.loads
        assert loads is not None
        wait_until(
            lambda: (
                (load := cluster.balancer.run(_get(loads, home))) is not None and load.figures.running >= 8
            ),
            timeout=30,
            what="the scraper to see the external load",
        )
        cluster.chat(SYSTEM + " next")
        assert sorted(cluster.served().values()) == [1, 1]


async def _get(loads: EngineLoadTable, address: str) -> EngineLoad | None:
    """Read the table on the balancer's loop."""
    return loads.get(address)
