"""Backpressure (per-worker cap, bounded queue, 429 with Retry-After) and draining on stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorkerFarm, WorkerBehaviour
from gllm.testing.load import check_stream
from gllm.testing.net import wait_until

MakeBalancer = Callable[..., BalancerThread]


def post(url: str, stream: bool = False) -> httpx.Response:
    """One completion (its own connection, so requests really run side by side)."""
    with httpx.Client(timeout=30) as http:
        return http.post(f"{url}/v1/completions", json={"prompt": "p", "stream": stream})


def queued(balancer: BalancerThread) -> int:
    """Requests waiting in the balancer's admission queue."""
    assert balancer.app is not None
    return len(balancer.app.admission)


@pytest.mark.integration
class TestBackpressure:
    """At the in-flight cap requests wait in a bounded FIFO queue; beyond it or past the deadline, 429."""

    def test_queue_full_and_queue_timeout(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """One running, one waiting; a third is refused at once, the waiting one times out: both 429."""
        balancer = make_balancer(
            max_in_flight_per_worker=1, max_queue=1, queue_timeout=1.0, health_interval=3600.0
        )
        worker = farm.add(WorkerBehaviour(hold=True))
        httpx.post(f"{balancer.url}/add_worker", json={"address": worker.url}, timeout=10)
        with ThreadPoolExecutor(3) as pool:
            try:
                running = pool.submit(post, balancer.url)
                wait_until(lambda: worker.held == 1, what="first request at the worker")
                waiting = pool.submit(post, balancer.url)
                wait_until(lambda: queued(balancer) == 1, what="second request queued")
                refused = post(balancer.url)
                assert refused.status_code == 429
                assert refused.json()["error"]["code"] == "queue_full"
                assert refused.headers["retry-after"] == "1"
                timed_out = waiting.result(timeout=30)
                assert timed_out.status_code == 429
                assert timed_out.json()["error"]["code"] == "queue_timeout"
                assert timed_out.headers["retry-after"] == "1"
            finally:
                farm.release(worker)
            assert running.result(timeout=30).status_code == 200
        assert len(worker.completions()) == 1

    def test_waiters_are_served_first_come_first_served(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """Queued requests get the freed slot in arrival order and all succeed; none overloads the worker."""
        balancer = make_balancer(
            max_in_flight_per_worker=1, max_queue=8, queue_timeout=30.0, health_interval=3600.0
        )
        worker = farm.add(WorkerBehaviour(hold=True))
        httpx.post(f"{balancer.url}/add_worker", json={"address": worker.url}, timeout=10)
        futures: list[Future[httpx.Response]] = []
        with ThreadPoolExecutor(5) as pool:
            try:
                futures.append(pool.submit(post, balancer.url))
                wait_until(lambda: worker.held == 1, what="first request at the worker")
                for i in range(4):
                    futures.append(pool.submit(post, balancer.url))
                    wait_until(lambda i=i: queued(balancer) == i + 1, what=f"{i + 1} queued")  # type: ignore[misc]
                assert worker.held == 1  # the cap holds: the others wait in the balancer, not at the worker
            finally:
                farm.release(worker)
            assert [f.result(timeout=30).status_code for f in futures] == [200] * 5
        assert queued(balancer) == 0


@pytest.mark.integration
class TestDrain:
    """On stop, open streams finish; new requests on open connections get 503 with Retry-After."""

    def test_stop_waits_for_open_streams(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """A stream in flight when the balancer is told to stop completes whole; the stop then returns."""
        balancer = make_balancer(health_interval=3600.0, drain_timeout=30.0)
        worker = farm.add(WorkerBehaviour(stream_chunks=10, chunk_delay=0.1))
        httpx.post(f"{balancer.url}/add_worker", json={"address": worker.url}, timeout=10)
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=balancer.url, timeout=30) as idle_conn:
            assert (
                idle_conn.get("/workers").status_code == 200
            )  # a kept-alive connection from before the stop
            streaming = pool.submit(post, balancer.url, True)
            wait_until(
                lambda: balancer.app is not None and balancer.app.dispatcher.active == 1, what="stream open"
            )
            stopper = threading.Thread(target=balancer.stop)
            stopper.start()
            assert balancer.app is not None
            wait_until(lambda: balancer.app is not None and balancer.app.dispatcher.draining, what="draining")
            late = idle_conn.post("/v1/completions", json={"prompt": "p"})
            assert late.status_code == 503
            assert late.json()["error"]["code"] == "shutting_down"
            assert late.headers["retry-after"] == "1"
            response = streaming.result(timeout=30)
            stopper.join(timeout=40)
            assert not stopper.is_alive()
        assert response.status_code == 200
        assert check_stream(response.content).ok
        assert worker.completed_streams == 1
