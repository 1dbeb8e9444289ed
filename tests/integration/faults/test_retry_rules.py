"""Which failures are retried on another worker, how often, and what feeds the breaker and the timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour
from gllm.testing.load import check_stream
from gllm.testing.net import free_port, wait_until

MakeBalancer = Callable[..., BalancerThread]


def register(http: httpx.Client, *addresses: str) -> None:
    """POST /add_worker for each address."""
    for address in addresses:
        assert http.post("/add_worker", json={"address": address}).status_code == 200


def view(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """GET /workers keyed by address."""
    return {w["address"]: w for w in http.get("/workers").json()}


def served(*workers: FakeWorker) -> int:
    """Completion requests the workers received in all."""
    return sum(len(w.completions()) for w in workers)


@pytest.mark.integration
class TestWhatIsRetried:
    """Failures before the client got a byte are retried elsewhere; a worker's own 4xx/500 is passed on."""

    @pytest.mark.parametrize("status", [502, 503])
    def test_retryable_status_goes_to_another_worker(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm, status: int
    ) -> None:
        """A 502/503 from one worker is retried on the other: the client sees one success."""
        balancer = make_balancer(health_interval=3600.0)
        bad, good = farm.add(WorkerBehaviour(completion_status=status)), farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, bad.url, good.url)
            for _ in range(6):
                assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 200
            assert len(good.completions()) == 6
            assert view(http)[bad.url]["last_error"].startswith(f"worker answered {status}")

    @pytest.mark.parametrize("status", [400, 404, 422, 500])
    def test_worker_answer_passed_through(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm, status: int
    ) -> None:
        """4xx and 500 are the worker's answer about the request: passed on, never retried."""
        balancer = make_balancer(health_interval=3600.0)
        workers = [farm.add(WorkerBehaviour(completion_status=status)) for _ in range(3)]
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, *(w.url for w in workers))
            response = http.post("/v1/completions", json={"prompt": "p"})
        assert response.status_code == status
        assert "says no" in response.json()["error"]["message"]
        assert served(*workers) == 1

    def test_all_refusing_gives_the_workers_own_answer(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """When every attempt gets a 503, the client receives the last worker's 503 body."""
        balancer = make_balancer(health_interval=3600.0)
        workers = [farm.add(WorkerBehaviour(completion_status=503)) for _ in range(3)]
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, *(w.url for w in workers))
            response = http.post("/v1/completions", json={"prompt": "p"})
            assert sum(w["in_flight"] for w in view(http).values()) == 0
        assert response.status_code == 503
        assert "says no" in response.json()["error"]["message"]
        assert served(*workers) == 3  # max_attempts (3), each on a different worker

    @pytest.mark.parametrize("attempts", [1, 2, 4])
    def test_attempts_are_bounded(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm, attempts: int
    ) -> None:
        """max_attempts workers at most per request, never the same one twice."""
        balancer = make_balancer(health_interval=3600.0, max_attempts=attempts, breaker_failures=100)
        workers = [farm.add(WorkerBehaviour(completion_status=503)) for _ in range(5)]
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, *(w.url for w in workers))
            assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 503
        assert sorted(len(w.completions()) for w in workers) == [0] * (5 - attempts) + [1] * attempts

    def test_stream_refused_before_its_head_is_retried(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """A stream refused with 503 is retried like any request: the client gets one whole stream."""
        balancer = make_balancer(health_interval=3600.0)
        bad, good = (
            farm.add(WorkerBehaviour(completion_status=503)),
            farm.add(WorkerBehaviour(stream_chunks=4)),
        )
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, bad.url, good.url)
            for _ in range(4):
                response = http.post("/v1/completions", json={"prompt": "p", "stream": True})
                assert response.status_code == 200
                assert check_stream(response.content).ok


@pytest.mark.integration
class TestTimeouts:
    """A silent worker times out (first byte, idle) onto another one; with nobody left, 504."""

    def test_first_byte_timeout_moves_on(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """A hung worker costs the request one first-byte timeout, then another worker answers."""
        balancer = make_balancer(health_interval=3600.0, first_byte_timeout=0.5)
        hung, good = farm.add_hung(), farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, hung, good.url)
            for _ in range(4):
                assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 200
            assert "sent nothing" in view(http)[hung]["last_error"]

    def test_all_hung_is_504(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """Every worker silent: 504 after max_attempts first-byte timeouts, counts back to zero."""
        balancer = make_balancer(health_interval=3600.0, first_byte_timeout=0.3, max_attempts=2)
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, farm.add_hung(), farm.add_hung())
            started = time.monotonic()
            response = http.post("/v1/completions", json={"prompt": "p"})
            assert response.status_code == 504
            assert response.json()["error"]["code"] == "worker_timeout"
            assert time.monotonic() - started < 10
            assert sum(w["in_flight"] for w in view(http).values()) == 0

    def test_idle_stream_fails_over(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """A stream silent for idle_timeout is continued on another worker; the client gets one stream."""
        balancer = make_balancer(health_interval=3600.0, idle_timeout=0.5)
        stalls = farm.add(WorkerBehaviour(stream_chunks=3, chunk_delay=5.0))  # one chunk, then silence
        fine = farm.add(WorkerBehaviour(stream_chunks=3))
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, stalls.url, fine.url)
            for _ in range(10):  # until one request has met the staller (routing picks among idle workers)
                response = http.post("/v1/chat/completions", json={"messages": [], "stream": True})
                assert response.status_code == 200
                assert check_stream(response.content).ok, response.content
                if stalls.completions():
                    break
            assert len(stalls.completions()) == 1
            assert "sent nothing for" in view(http)[stalls.url]["last_error"]


@pytest.mark.integration
class TestBreaker:
    """Consecutive failures open a worker's breaker; it shows in /workers and recovers through half-open."""

    def test_opens_and_shows_in_workers(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """breaker_failures refused requests open it; while open the worker gets nothing."""
        balancer = make_balancer(health_interval=3600.0, breaker_failures=3, breaker_open_seconds=60.0)
        bad, good = farm.add(WorkerBehaviour(completion_status=503)), farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, bad.url, good.url)
            for _ in range(30):
                assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 200
                if view(http)[bad.url]["breaker"] == "open":
                    break
            row = view(http)[bad.url]
            assert (row["breaker"], row["consecutive_failures"]) == ("open", 3)
            before = len(bad.completions())
            for _ in range(10):
                assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 200
            assert len(bad.completions()) == before

    def test_half_open_trial_closes_it(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """After open_seconds a recovered worker gets trial requests; successes close the breaker."""
        balancer = make_balancer(health_interval=3600.0, breaker_failures=1, breaker_open_seconds=0.3)
        flaky = farm.add(WorkerBehaviour(completion_status=503))
        other = farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, flaky.url, other.url)
            wait_until(
                lambda: (
                    http.post("/v1/completions", json={}).status_code == 200
                    and view(http)[flaky.url]["breaker"] == "open"
                ),
                timeout=15,
                what="breaker open",
            )
            flaky.behaviour.completion_status = 200
            wait_until(
                lambda: (
                    http.post("/v1/completions", json={}).status_code == 200
                    and view(http)[flaky.url]["breaker"] == "closed"
                ),
                timeout=30,
                what="breaker closed again",
            )
            assert view(http)[flaky.url]["consecutive_failures"] == 0

    def test_connection_refused_feeds_the_breaker(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """A worker nobody listens for opens its breaker, and requests keep succeeding elsewhere."""
        balancer = make_balancer(health_interval=3600.0, breaker_failures=2, breaker_open_seconds=60.0)
        dead = f"http://127.0.0.1:{free_port()}"
        good = farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, dead, good.url)
            for _ in range(20):
                assert http.post("/v1/completions", json={}).status_code == 200
            assert view(http)[dead]["breaker"] == "open"

    def test_client_disconnects_do_not_open_the_breaker(
        self, make_balancer: MakeBalancer, farm: FakeWorkerFarm
    ) -> None:
        """A client that hangs up mid-stream is not the worker's failure: its breaker stays closed."""
        balancer = make_balancer(health_interval=3600.0, breaker_failures=2, breaker_open_seconds=60.0)
        worker = farm.add(WorkerBehaviour(stream_chunks=50, chunk_delay=0.05))
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            register(http, worker.url)
            for _ in range(3):
                with httpx.Client(base_url=balancer.url, timeout=30) as impatient:
                    body = {"prompt": "p", "stream": True}
                    with impatient.stream("POST", "/v1/completions", json=body) as response:
                        next(response.iter_bytes())  # one chunk, then the client goes away
                wait_until(lambda: view(http)[worker.url]["in_flight"] == 0, what="cancelled stream released")
            row = view(http)[worker.url]
            assert (row["breaker"], row["consecutive_failures"]) == ("closed", 0)
            assert http.post("/v1/completions", json={"prompt": "p"}).status_code == 200
