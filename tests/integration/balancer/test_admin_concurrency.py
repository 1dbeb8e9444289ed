"""Balancer contract, continued: the admin key on control routes, and exact counts under concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.checks import (
    assert_openai_error,
    by_address,
    total_in_flight,
)
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm

AddWorkers = Callable[..., list[FakeWorker]]
MakeBalancer = Callable[..., BalancerThread]


@pytest.fixture
def keyed(make_balancer: MakeBalancer) -> Iterator[httpx.Client]:
    """A client bound to a balancer whose control routes need the admin key `k`."""
    with httpx.Client(base_url=make_balancer(admin_key="k").url, timeout=30) as http:
        yield http


ADMIN = {"Authorization": "Bearer k"}


@pytest.mark.integration
class TestAdminKey:
    """With an admin key, control routes need `Authorization: Bearer <key>`; the rest stay open."""

    @pytest.mark.parametrize(
        "path", ["/add_worker", "/remove_worker", "/load_model", "/release_gpus", "/v1/add_worker"]
    )
    @pytest.mark.parametrize("auth", [None, "Bearer wrong", "k", "Basic k", "Bearer k2"])
    def test_control_routes_401(
        self, keyed: httpx.Client, farm: FakeWorkerFarm, path: str, auth: str | None
    ) -> None:
        """No key or a wrong one: 401 and nothing happens."""
        worker = farm.add()
        headers = {"Authorization": auth} if auth else {}
        body = {"address": worker.url, "model_path": "m"}
        assert_openai_error(keyed.post(path, json=body, headers=headers), 401)
        assert by_address(keyed) == {}
        assert worker.requests == []

    def test_control_routes_with_key(self, keyed: httpx.Client, farm: FakeWorkerFarm) -> None:
        """The right key opens every control route."""
        worker = farm.add()
        body = {"address": worker.url}
        assert keyed.post("/add_worker", json=body, headers=ADMIN).status_code == 200
        assert keyed.post("/load_model", json={"model_path": "m"}, headers=ADMIN).status_code == 200
        assert keyed.post("/release_gpus", headers=ADMIN).status_code == 200
        assert keyed.post("/v1/remove_worker", json=body, headers=ADMIN).status_code == 200

    def test_other_routes_are_open(self, keyed: httpx.Client, farm: FakeWorkerFarm) -> None:
        """/health, /workers, /models and the OpenAI routes need no admin key; the user's key goes to the worker."""
        worker = farm.add()
        assert keyed.post("/add_worker", json={"address": worker.url}, headers=ADMIN).status_code == 200
        assert keyed.get("/health").status_code == 200
        assert keyed.get("/workers").status_code == 200
        assert keyed.get("/v1/models").status_code == 200
        user = {"Authorization": "Bearer sk-user"}
        assert keyed.post("/v1/chat/completions", json={}, headers=user).status_code == 200
        assert keyed.post("/completions", json={}).status_code == 200
        assert worker.completions()[0].headers["Authorization"] == "Bearer sk-user"


@pytest.mark.integration
class TestConcurrency:
    """Hundreds of concurrent requests: all answered, counts exact."""

    def test_hundreds_of_concurrent_requests(
        self, balancer: BalancerThread, client: httpx.Client, add_workers: AddWorkers
    ) -> None:
        """300 concurrent requests (a third streamed) all succeed; per-worker counts add up; in_flight is 0."""
        workers = add_workers(3, stream_chunks=3)
        total = 300

        async def one(http: aiohttp.ClientSession, i: int) -> bool:
            stream = i % 3 == 0
            path = "/completions" if stream else "/chat/completions"
            async with http.post(balancer.url + path, json={"i": i, "stream": stream}) as response:
                body = await response.read()
            if stream:
                return response.status == 200 and body.endswith(b"data: [DONE]\n\n")
            return response.status == 200 and json.loads(body)["echo"] == {"i": i, "stream": False}

        async def run_all() -> list[bool]:
            connector = aiohttp.TCPConnector(limit=total)  # all of them at once
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                return list(await asyncio.gather(*(one(http, i) for i in range(total))))

        assert all(asyncio.run(run_all()))
        assert sum(len(w.completions()) for w in workers) == total
        assert all(w.completions() for w in workers)
        wait_until(lambda: total_in_flight(client) == 0, what="in_flight back to 0")
        assert sum(w["requests_total"] for w in by_address(client).values()) == total

    def test_in_flight_exact_while_held(
        self, client: httpx.Client, farm: FakeWorkerFarm, add_workers: AddWorkers
    ) -> None:
        """With N requests held, /workers shows N in flight, spread evenly; all return to 0 after."""
        workers = add_workers(2, hold=True)
        n = 24
        with ThreadPoolExecutor(n) as pool:
            try:
                futures = [pool.submit(client.post, "/completions", json={"i": i}) for i in range(n)]
                wait_until(lambda: sum(w.held for w in workers) == n, what=f"{n} requests held")
                counts = [w["in_flight"] for w in by_address(client).values()]
                assert sum(counts) == n
                assert max(counts) - min(counts) <= 1  # each choice took the least busy worker
            finally:
                for worker in workers:
                    farm.release(worker)
            assert [f.result().status_code for f in futures] == [200] * n
        assert total_in_flight(client) == 0
