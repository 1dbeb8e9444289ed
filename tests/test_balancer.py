# ruff: noqa: PT009  (this module is the unittest flavour of the suite: TestCase assertions are its idiom)
"""The balancer's main contract as unittest TestCases: `python -m unittest -v tests.test_balancer`.

Each test starts a real balancer and real fake workers on 127.0.0.1 and stops them in its cleanups.
"""

from __future__ import annotations

import json
import random
import socket
import unittest
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import httpx
import pytest

from gllm.balancer.policies import RoutingContext
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.registry import Registry
from gllm.testing import free_port, wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour

pytestmark = pytest.mark.integration


class BalancerTestCase(unittest.TestCase):
    """A fresh balancer (with `config` overrides), a farm of fake workers and an HTTP client per test."""

    config: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        self.farm = FakeWorkerFarm()
        self.addCleanup(self.farm.close)
        self.balancer = BalancerThread(**self.config).start()
        self.addCleanup(self.balancer.stop)
        self.http = httpx.Client(base_url=self.balancer.url, timeout=30)
        self.addCleanup(self.http.close)

    def add_worker(self, headers: dict[str, str] | None = None, **behaviour: Any) -> FakeWorker:
        """Start a fake worker and register it."""
        worker = self.farm.add(WorkerBehaviour(**behaviour))
        response = self.http.post("/add_worker", json={"address": worker.url}, headers=headers)
        self.assertEqual(response.status_code, 200)
        return worker

    def in_flight(self) -> dict[str, int]:
        """In-flight count per worker address, from GET /workers."""
        return {w["address"]: w["in_flight"] for w in self.http.get("/workers").json()}

    def assertOpenAIError(self, response: httpx.Response, status: int) -> None:
        """The response is an OpenAI-style JSON error with this status."""
        self.assertEqual(response.status_code, status, response.text)
        self.assertTrue(response.json()["error"]["message"])


class TestWorkerManagement(BalancerTestCase):
    """/add_worker, /remove_worker, /workers."""

    def test_add_worker_success(self) -> None:
        """Registering answers 200 with the (empty) cluster model and lists the worker."""
        worker = self.farm.add()
        response = self.http.post("/add_worker", json={"address": worker.url})
        self.assertEqual((response.status_code, response.text), (200, ""))
        self.assertEqual(self.in_flight(), {worker.url: 0})

    def test_add_worker_returns_model(self) -> None:
        """After /load_model, registering answers with the model."""
        self.http.post("/load_model", json={"model_path": "m-7b"})
        self.assertEqual(self.http.post("/add_worker", json={"address": self.farm.add().url}).text, "m-7b")

    def test_remove_worker(self) -> None:
        """A removed worker disappears; an unknown one is a 404."""
        worker = self.add_worker()
        self.assertEqual(self.http.post("/remove_worker", json={"address": worker.url}).status_code, 200)
        self.assertEqual(self.in_flight(), {})
        self.assertOpenAIError(self.http.post("/remove_worker", json={"address": worker.url}), 404)

    def test_invalid_addresses(self) -> None:
        """Malformed JSON, missing/empty addresses and non-http(s) URLs are 400s."""
        for body in (
            b"{x",
            b"{}",
            b'{"address": ""}',
            b'{"address": "ftp://h:1"}',
            b'{"address": "http://u:p@h:1"}',
        ):
            with self.subTest(body=body):
                self.assertOpenAIError(self.http.post("/add_worker", content=body), 400)


class TestHealthEndpoint(BalancerTestCase):
    """GET /health."""

    def test_no_workers(self) -> None:
        """503 `No workers available`."""
        response = self.http.get("/health")
        self.assertEqual((response.status_code, response.text), (503, "No workers available"))

    def test_all_healthy(self) -> None:
        """200 `All workers healthy`."""
        self.add_worker()
        self.add_worker()
        response = self.http.get("/v1/health")
        self.assertEqual((response.status_code, response.text), (200, "All workers healthy"))

    def test_unhealthy_or_unreachable(self) -> None:
        """A worker answering 503, or nobody listening, gives 503 `Worker unhealthy`."""
        self.add_worker()
        bad = self.add_worker(health_status=503)
        self.assertEqual(self.http.get("/health").text, "Worker unhealthy")
        bad.behaviour.health_status = 200
        self.assertEqual(self.http.get("/health").status_code, 200)
        self.http.post("/add_worker", json={"address": f"http://127.0.0.1:{free_port()}"})
        self.assertEqual(self.http.get("/health").status_code, 503)


class TestCompletions(BalancerTestCase):
    """POST /chat/completions and /completions relay to a worker."""

    def test_body_forwarded_and_answer_passed_back(self) -> None:
        """The worker gets the exact bytes; the client gets the worker's status, body and content type."""
        worker = self.add_worker()
        body = b'{"z": 1, "model": "m", "x_unknown": [1.50, null], "a": {}}'
        for path in ("/chat/completions", "/v1/completions"):
            with self.subTest(path=path):
                response = self.http.post(path, content=body, headers={"Authorization": "Bearer u"})
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.headers["content-type"], "application/json; charset=utf-8")
                self.assertEqual(worker.completions()[-1].body, body)
                self.assertEqual(worker.completions()[-1].headers["Authorization"], "Bearer u")

    def test_worker_error_passed_through(self) -> None:
        """A worker's 400 comes back as it is."""
        self.add_worker(completion_status=400)
        response = self.http.post("/completions", json={})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["message"], "w0 says no")

    def test_streaming(self) -> None:
        """SSE events are relayed in order, ending with [DONE]."""
        self.add_worker(stream_chunks=4)
        with self.http.stream("POST", "/chat/completions", json={"stream": True}) as response:
            self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual([json.loads(e)["index"] for e in events[:-1]], [0, 1, 2, 3])

    def test_no_workers_and_bad_bodies(self) -> None:
        """No worker: 503; a body that is not a JSON object: 400."""
        self.assertOpenAIError(self.http.post("/chat/completions", json={}), 503)
        self.add_worker()
        for body in (b"[1]", b'"x"', b"5", b"null", b"{oops", b""):
            with self.subTest(body=body):
                self.assertOpenAIError(self.http.post("/chat/completions", content=body), 400)

    def test_unreachable_workers(self) -> None:
        """An unreachable worker is skipped for another; with none reachable the answer is 502."""
        dead = f"http://127.0.0.1:{free_port()}"
        self.http.post("/add_worker", json={"address": dead})
        worker = self.add_worker()
        for _ in range(8):
            self.assertEqual(self.http.post("/completions", json={}).status_code, 200)
        self.assertEqual(len(worker.completions()), 8)
        self.http.post("/remove_worker", json={"address": worker.url})
        self.assertOpenAIError(self.http.post("/completions", json={}), 502)
        self.assertEqual(self.in_flight(), {dead: 0})


class TestLoadModelAndRelease(BalancerTestCase):
    """POST /load_model and /release_gpus fan out to every worker."""

    def test_load_model(self) -> None:
        """All accept: 200; one refuses: 500 naming it; a bad body: 400."""
        good = self.add_worker()
        self.assertEqual(self.http.post("/load_model", json={"model_path": "m"}).text, "Model load requested")
        loads = [r.json() for r in good.requests if r.path == "/load_model"]
        self.assertEqual(loads, [{"model_path": "m"}])
        bad = self.add_worker(load_model_status=500)
        response = self.http.post("/load_model", json={"model_path": "m", "force_reload": True})
        self.assertEqual(response.status_code, 500)
        self.assertTrue(response.text.startswith("Failed to load model"))
        self.assertIn(bad.url, response.text)
        self.assertOpenAIError(self.http.post("/load_model", json={"force_reload": True}), 400)

    def test_release_gpus(self) -> None:
        """All release: 200 `Gpus released`; one refuses: 500 naming it."""
        response = self.http.post("/release_gpus")
        self.assertEqual((response.status_code, response.text), (200, "Gpus released"))
        self.add_worker()
        bad = self.add_worker(release_status=500)
        response = self.http.post("/release_gpus")
        self.assertTrue(response.text.startswith("Failed to release gpus"))
        self.assertIn(bad.url, response.text)


class TestLoadBalancing(BalancerTestCase):
    """Least busy worker selection."""

    def test_least_busy_worker_selection(self) -> None:
        """The policy takes the worker with the fewest in-flight requests."""
        cases = [
            ({"http://w1:8000": 0, "http://w2:8000": 5}, "http://w1:8000"),
            ({"http://w1:8000": 3, "http://w2:8000": 1}, "http://w2:8000"),
        ]
        for loads, expected in cases:
            with self.subTest(loads=loads):
                registry = Registry()
                for address, load in loads.items():
                    registry.add(address)[0].in_flight = load
                chosen = LeastBusy(5, random.Random(0)).choose(registry.all(), RoutingContext())
                self.assertEqual(chosen.address, expected)

    def test_busy_worker_avoided(self) -> None:
        """While one worker holds a request, the others get the new ones; counts return to 0."""
        busy = self.add_worker(hold=True)
        with ThreadPoolExecutor(1) as pool:
            try:
                held = pool.submit(self.http.post, "/completions", json={})
                wait_until(lambda: busy.held == 1, what="request held")
                idle = self.add_worker()
                self.assertEqual(self.in_flight(), {busy.url: 1, idle.url: 0})
                for _ in range(5):
                    self.assertEqual(self.http.post("/completions", json={}).json()["worker"], idle.name)
            finally:
                self.farm.release(busy)
            self.assertEqual(held.result().status_code, 200)
        self.assertEqual(self.in_flight(), {busy.url: 0, idle.url: 0})


class TestAdminKey(BalancerTestCase):
    """Control routes need the admin key when one is set."""

    config: ClassVar[dict[str, Any]] = {"admin_key": "k"}

    def test_admin_key(self) -> None:
        """401 without the key or with a wrong one, 200 with it; other routes stay open."""
        worker = self.farm.add()
        for headers in ({}, {"Authorization": "Bearer nope"}):
            with self.subTest(headers=headers):
                self.assertOpenAIError(
                    self.http.post("/add_worker", json={"address": worker.url}, headers=headers), 401
                )
                self.assertOpenAIError(self.http.post("/release_gpus", headers=headers), 401)
        self.add_worker(headers={"Authorization": "Bearer k"})
        self.assertEqual(self.http.get("/health").status_code, 200)
        self.assertEqual(self.http.post("/chat/completions", json={}).status_code, 200)


class TestErrorHandling(BalancerTestCase):
    """Bad requests get clear errors; the balancer never crashes."""

    config: ClassVar[dict[str, Any]] = {"max_body_bytes": 2048}

    def test_unknown_route_and_method(self) -> None:
        """404 for an unknown path, 405 for a wrong method."""
        self.assertOpenAIError(self.http.get("/nope"), 404)
        self.assertOpenAIError(self.http.get("/chat/completions"), 405)

    def test_body_too_large(self) -> None:
        """A body over the limit is a 413."""
        self.add_worker()
        self.assertEqual(self.http.post("/completions", json={"p": "x" * 4096}).status_code, 413)

    def test_garbage(self) -> None:
        """Bytes that are not HTTP get a 400; the balancer keeps serving."""
        with socket.create_connection(("127.0.0.1", self.balancer.port), timeout=15) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
            self.assertTrue(sock.recv(65536).startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.http.get("/health").status_code, 503)


class TestConcurrency(BalancerTestCase):
    """Many requests at once; counts stay exact."""

    def test_concurrent_requests(self) -> None:
        """200 concurrent requests all succeed and leave every in-flight count at 0."""
        workers = [self.add_worker(completion_delay=0.01) for _ in range(3)]
        with ThreadPoolExecutor(50) as pool:
            statuses = list(
                pool.map(lambda i: self.http.post("/completions", json={"i": i}).status_code, range(200))
            )
        self.assertEqual(statuses, [200] * 200)
        self.assertEqual(sum(len(w.completions()) for w in workers), 200)
        self.assertEqual(set(self.in_flight().values()), {0})


if __name__ == "__main__":
    unittest.main()
