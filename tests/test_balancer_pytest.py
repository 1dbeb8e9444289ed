"""The balancer's contract through real HTTP: a real balancer, real fake workers, one test per behaviour."""

from __future__ import annotations

import json
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gllm.balancer.policies import RoutingContext
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.registry import Registry
from gllm.testing import wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.checks import (
    assert_openai_error,
    by_address,
    raw_exchange,
    sse_events,
    total_in_flight,
    unreachable,
)
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour

AddWorkers = Callable[..., list[FakeWorker]]
MakeBalancer = Callable[..., BalancerThread]


@pytest.mark.integration
class TestWorkerManagement:
    """/add_worker, /remove_worker and /workers."""

    def test_add_worker_success(self, client: httpx.Client, farm: FakeWorkerFarm) -> None:
        """A worker registers with 200 and an empty model; /workers then lists it, idle, not yet probed."""
        worker = farm.add()
        response = client.post("/add_worker", json={"address": worker.url})
        assert response.status_code == 200
        assert response.text == ""
        workers = by_address(client)
        assert list(workers) == [worker.url]
        assert (workers[worker.url]["in_flight"], workers[worker.url]["healthy"]) == (0, None)

    def test_add_worker_returns_cluster_model(self, client: httpx.Client, farm: FakeWorkerFarm) -> None:
        """Once a model is loaded, registering answers with its name as plain text."""
        assert client.post("/load_model", json={"model_path": "org/model-7b"}).status_code == 200
        response = client.post("/v1/add_worker", json={"address": farm.add().url})
        assert (response.status_code, response.text) == (200, "org/model-7b")
        assert response.headers["content-type"].startswith("text/plain")

    def test_readd_keeps_in_flight(
        self, client: httpx.Client, farm: FakeWorkerFarm, add_workers: AddWorkers
    ) -> None:
        """Re-adding a known address (in any spelling) keeps one record and its in-flight count."""
        (worker,) = add_workers(1, hold=True)
        with ThreadPoolExecutor(1) as pool:
            try:
                future = pool.submit(client.post, "/chat/completions", json={"model": "m"})
                wait_until(lambda: worker.held == 1, what="request held")
                spelled_differently = worker.url.replace("http://", "HTTP://") + "/"
                assert client.post("/add_worker", json={"address": spelled_differently}).status_code == 200
                workers = by_address(client)
                assert list(workers) == [worker.url]
                assert workers[worker.url]["in_flight"] == 1
            finally:
                farm.release(worker)
            assert future.result().status_code == 200
        assert total_in_flight(client) == 0

    def test_remove_worker(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A removed worker is no longer listed and gets no requests."""
        (worker,) = add_workers(1)
        response = client.post("/remove_worker", json={"address": worker.url})
        assert response.status_code == 200
        assert by_address(client) == {}
        assert_openai_error(client.post("/chat/completions", json={}), 503)
        assert worker.completions() == []

    def test_remove_unknown_worker_404(self, client: httpx.Client) -> None:
        """Removing an address that is not registered is a 404."""
        assert_openai_error(client.post("/remove_worker", json={"address": "http://127.0.0.1:9"}), 404)

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"",
            b"[]",
            b"{}",
            b'{"address": ""}',
            b'{"address": null}',
            b'{"address": 8000}',
            b'{"address": "ftp://127.0.0.1:21"}',
            b'{"address": "127.0.0.1:8000"}',
            b'{"address": "http://user:pass@127.0.0.1:8000"}',
            b'{"address": "http://127.0.0.1:8000/v1"}',
            b'{"address": "http://127.0.0.1:8000?x=1"}',
        ],
    )
    @pytest.mark.parametrize("route", ["/add_worker", "/remove_worker"])
    def test_bad_address_400(self, client: httpx.Client, route: str, body: bytes) -> None:
        """Malformed JSON, a missing/empty address or a non-http(s) URL is a 400 that says why."""
        assert_openai_error(client.post(route, content=body), 400)
        assert by_address(client) == {}


@pytest.mark.integration
class TestHealthEndpoint:
    """GET /health probes every worker concurrently with a short timeout."""

    def test_no_workers(self, client: httpx.Client) -> None:
        """No workers: 503 `No workers available`."""
        response = client.get("/health")
        assert (response.status_code, response.text) == (503, "No workers available")

    def test_all_healthy(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """Every worker answers 200: 200 `All workers healthy`, at the root and under /v1."""
        add_workers(3)
        for path in ("/health", "/v1/health"):
            response = client.get(path)
            assert (response.status_code, response.text) == (200, "All workers healthy")

    def test_one_unhealthy(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """One worker answering 503: 503 `Worker unhealthy`."""
        add_workers(2)
        add_workers(1, health_status=503)
        response = client.get("/health")
        assert (response.status_code, response.text) == (503, "Worker unhealthy")

    def test_unreachable_worker(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A worker nobody listens for makes the cluster unhealthy."""
        add_workers(1)
        assert client.post("/add_worker", json={"address": unreachable()}).status_code == 200
        response = client.get("/health")
        assert (response.status_code, response.text) == (503, "Worker unhealthy")

    def test_hung_worker_is_bounded(
        self, client: httpx.Client, farm: FakeWorkerFarm, add_workers: AddWorkers
    ) -> None:
        """A worker that never answers cannot hold /health for long."""
        add_workers(2)
        assert client.post("/add_worker", json={"address": farm.add_hung()}).status_code == 200
        started = time.monotonic()
        response = client.get("/health")
        assert time.monotonic() - started < 15
        assert (response.status_code, response.text) == (503, "Worker unhealthy")

    def test_healthy_flag_in_workers(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """`healthy` is null before the first probe, then true or false."""
        balancer = make_balancer(health_interval=3600.0)  # no background probe during the test
        good, bad = farm.add(), farm.add(WorkerBehaviour(health_status=500))
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            for worker in (good, bad):
                assert http.post("/add_worker", json={"address": worker.url}).status_code == 200
            assert {a: w["healthy"] for a, w in by_address(http).items()} == {good.url: None, bad.url: None}
            http.get("/health")
            assert {a: w["healthy"] for a, w in by_address(http).items()} == {good.url: True, bad.url: False}
            bad.behaviour.health_status = 200
            assert http.get("/health").status_code == 200
            assert by_address(http)[bad.url]["healthy"] is True


class _RelayContract:
    """The relay contract shared by /chat/completions and /completions."""

    path = ""

    def test_body_forwarded_byte_identical(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """No field is dropped, added or reordered: the worker receives exactly the bytes sent."""
        (worker,) = add_workers(1)
        body = (
            b'{"zeta": 1,  "model":"m", "messages":[{"role":"user","content":"h\\u00e9llo"}],'
            b' "x_unknown": {"nested": [1, 2.50, true, null]}, "alpha": "last"}'
        )
        response = client.post(self.path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200
        (received,) = worker.completions()
        assert (received.path, received.body) == (self.path, body)

    def test_response_passed_through(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """The worker's status, body, content type and own headers come back unchanged."""
        (worker,) = add_workers(1)
        response = client.post(self.path, json={"model": "m", "prompt": "hi"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.headers["x-worker"] == worker.name
        assert response.json()["echo"] == {"model": "m", "prompt": "hi"}

    @pytest.mark.parametrize("status", [400, 404, 422, 500])
    def test_worker_error_passed_through(
        self, client: httpx.Client, add_workers: AddWorkers, status: int
    ) -> None:
        """A worker's error status, body and content type reach the client as they are, without retry."""
        (worker,) = add_workers(1, completion_status=status)
        response = client.post(self.path, json={"model": "m"})
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == {
            "error": {"message": f"{worker.name} says no", "type": "test", "code": status}
        }
        assert len(worker.completions()) == 1

    @pytest.mark.parametrize("status", [502, 503])
    def test_lone_worker_unavailable_passed_through(
        self, client: httpx.Client, add_workers: AddWorkers, status: int
    ) -> None:
        """With no other worker to try, a worker's 502/503 answer reaches the client unchanged."""
        (worker,) = add_workers(1, completion_status=status)
        response = client.post(self.path, json={"model": "m"})
        assert response.status_code == status
        assert response.json() == {
            "error": {"message": f"{worker.name} says no", "type": "test", "code": status}
        }

    def test_streaming_relayed(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """With "stream": true every SSE event arrives in order, then [DONE]."""
        (worker,) = add_workers(1, stream_chunks=5)
        with client.stream("POST", self.path, json={"model": "m", "stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(list(response.iter_lines()))
        assert events[-1] == "[DONE]"
        assert [json.loads(e)["index"] for e in events[:-1]] == [0, 1, 2, 3, 4]
        # The worker counts the stream once its handler returns, which may be just after the client has read it.
        wait_until(lambda: worker.completed_streams == 1, timeout=30, what="worker finished the stream")
        assert total_in_flight(client) == 0

    def test_streaming_not_buffered(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """The first event reaches the client while the worker is still generating."""
        (worker,) = add_workers(1, stream_chunks=20, chunk_delay=0.5)
        with client.stream("POST", self.path, json={"stream": True}) as response:
            first = next(response.iter_lines())
            assert json.loads(first[len("data: ") :])["index"] == 0
            assert worker.completed_streams == 0
        wait_until(lambda: worker.broken_streams == 1, what="worker sees the stream closed")
        wait_until(lambda: total_in_flight(client) == 0, what="in_flight back to 0")

    def test_headers(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """Authorization and other end-to-end headers reach the worker; hop-by-hop ones do not."""
        (worker,) = add_workers(1)
        headers = {
            "Authorization": "Bearer sk-user",
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Private",
            "X-Private": "dropped",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
        }
        assert client.post(self.path, json={}, headers=headers).status_code == 200
        received = {k.lower(): v for k, v in worker.completions()[0].headers.items()}
        assert received["authorization"] == "Bearer sk-user"
        assert received["x-custom"] == "kept"
        for name in ("x-private", "keep-alive", "te", "proxy-authorization"):
            assert name not in received
        assert received.get("connection", "keep-alive").lower() == "keep-alive"  # the balancer's own, if any

    def test_v1_prefix(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """/v1 works too and the worker is called at its own route."""
        (worker,) = add_workers(1)
        assert client.post("/v1" + self.path, json={"model": "m"}).status_code == 200
        assert worker.completions()[0].path == self.path

    def test_no_workers_503(self, client: httpx.Client) -> None:
        """No worker registered: 503 `No worker available` as an OpenAI error."""
        error = assert_openai_error(client.post(self.path, json={"model": "m"}), 503)
        assert error["message"] == "No worker available"

    @pytest.mark.parametrize("body", [b"[1]", b'"x"', b"5", b"null", b"true", b"{bad json", b"\xff\xfe", b""])
    def test_not_a_json_object_400(self, client: httpx.Client, add_workers: AddWorkers, body: bytes) -> None:
        """A body that is not a JSON object is a 400 OpenAI error and is not forwarded."""
        (worker,) = add_workers(1)
        assert_openai_error(client.post(self.path, content=body), 400)
        assert worker.completions() == []

    def test_body_too_large_413(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """A body over max_body_bytes is refused with 413 before it reaches a worker."""
        balancer = make_balancer(max_body_bytes=2048)
        worker = farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            assert http.post("/add_worker", json={"address": worker.url}).status_code == 200
            assert http.post(self.path, json={"prompt": "x" * 1000}).status_code == 200
            response = http.post(self.path, json={"prompt": "x" * 4096})
            assert response.status_code == 413
        assert len(worker.completions()) == 1

    def test_unreachable_worker_retried(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A worker that cannot be connected to is skipped for another: the client sees no error."""
        dead = unreachable()
        assert client.post("/add_worker", json={"address": dead}).status_code == 200
        (worker,) = add_workers(1)
        for _ in range(10):
            assert client.post(self.path, json={"model": "m"}).status_code == 200
        assert len(worker.completions()) == 10
        workers = by_address(client)
        assert workers[dead]["last_error"]  # it was tried (seeded routing), and failed over
        assert workers[dead]["in_flight"] == 0

    def test_all_unreachable_502(self, client: httpx.Client) -> None:
        """When no worker can be reached: 502 OpenAI error, counts back to 0."""
        for _ in range(2):
            assert client.post("/add_worker", json={"address": unreachable()}).status_code == 200
        assert_openai_error(client.post(self.path, json={"model": "m"}), 502)
        assert total_in_flight(client) == 0

    def test_timeout_504(self, make_balancer: MakeBalancer, farm: FakeWorkerFarm) -> None:
        """A worker slower than request_timeout gives a 504 OpenAI error."""
        balancer = make_balancer(request_timeout=1.0)
        worker = farm.add(WorkerBehaviour(completion_delay=5.0))
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            assert http.post("/add_worker", json={"address": worker.url}).status_code == 200
            assert_openai_error(http.post(self.path, json={"model": "m"}), 504)
            assert total_in_flight(http) == 0


@pytest.mark.integration
class TestChatCompletions(_RelayContract):
    """POST /chat/completions is relayed to the least busy worker."""

    path = "/chat/completions"


@pytest.mark.integration
class TestCompletions(_RelayContract):
    """POST /completions is relayed to the least busy worker."""

    path = "/completions"


@pytest.mark.integration
class TestLoadModel:
    """POST /load_model asks every worker, concurrently, and remembers the cluster model."""

    def test_fan_out_concurrently(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """Every worker gets the body; four 1.5 s loads take about 1.5 s, not 6 s."""
        workers = add_workers(4, control_delay=1.5)
        payload = {"model_path": "org/model", "force_reload": True, "x_extra": [1, 2]}
        started = time.monotonic()
        response = client.post("/load_model", json=payload)
        assert time.monotonic() - started < 4.5
        assert (response.status_code, response.text) == (200, "Model load requested")
        for worker in workers:
            (call,) = [r for r in worker.requests if r.path == "/load_model"]
            assert call.json() == payload

    def test_zero_workers(self, client: httpx.Client) -> None:
        """With no workers the model is still remembered: 200."""
        response = client.post("/v1/load_model", json={"model_path": "m"})
        assert (response.status_code, response.text) == (200, "Model load requested")

    @pytest.mark.parametrize(
        "body",
        [
            b"{bad",
            b"",
            b"[]",
            b"{}",
            b'{"model_path": ""}',
            b'{"model_path": "  "}',
            b'{"model_path": 7}',
            b'{"model_path": null}',
            b'{"model_path": "m", "force_reload": "yes"}',
            b'{"model_path": "m", "force_reload": 1}',
        ],
    )
    def test_bad_body_400(self, client: httpx.Client, add_workers: AddWorkers, body: bytes) -> None:
        """Malformed JSON, a missing or empty model_path or a non-bool force_reload is a 400; nothing is sent."""
        (worker,) = add_workers(1)
        assert_openai_error(client.post("/load_model", content=body), 400)
        assert [r for r in worker.requests if r.path == "/load_model"] == []
        assert client.get("/models").json()["data"] == []

    def test_failure_names_the_worker(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A worker refusing, or unreachable, gives 500 `Failed to load model ...` naming only it."""
        (good,) = add_workers(1)
        (bad,) = add_workers(1, load_model_status=500)
        dead = unreachable()
        assert client.post("/add_worker", json={"address": dead}).status_code == 200
        response = client.post("/load_model", json={"model_path": "m"})
        assert response.status_code == 500
        assert response.text.startswith("Failed to load model")
        assert bad.url in response.text
        assert dead in response.text
        assert good.url not in response.text

    def test_later_workers_get_the_model(self, client: httpx.Client, farm: FakeWorkerFarm) -> None:
        """After load_model, /add_worker answers with the model and /models lists it."""
        assert client.get("/models").json() == {"object": "list", "data": []}
        assert client.post("/load_model", json={"model_path": "org/m-7b"}).status_code == 200
        assert client.post("/add_worker", json={"address": farm.add().url}).text == "org/m-7b"
        for path in ("/models", "/v1/models"):
            models = client.get(path).json()
            assert models["object"] == "list"
            assert [(m["id"], m["object"]) for m in models["data"]] == [("org/m-7b", "model")]


@pytest.mark.integration
class TestReleaseGPUs:
    """POST /release_gpus asks every worker to stop its engine."""

    def test_release_all(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """Every worker is asked: 200 `Gpus released`."""
        workers = add_workers(3)
        response = client.post("/release_gpus")
        assert (response.status_code, response.text) == (200, "Gpus released")
        for worker in workers:
            assert [r.path for r in worker.requests if r.path != "/status"] == ["/release_gpus"]

    def test_zero_workers(self, client: httpx.Client) -> None:
        """With no workers: 200, at the root and under /v1."""
        for path in ("/release_gpus", "/v1/release_gpus"):
            assert (client.post(path).status_code, client.post(path).text) == (200, "Gpus released")

    def test_failure_names_the_worker(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A worker refusing gives 500 `Failed to release gpus ...` naming only it."""
        (good,) = add_workers(1)
        (bad,) = add_workers(1, release_status=503)
        response = client.post("/release_gpus")
        assert response.status_code == 500
        assert response.text.startswith("Failed to release gpus")
        assert bad.url in response.text
        assert good.url not in response.text
        assert [r.path for r in good.requests if r.path != "/status"] == ["/release_gpus"]


@pytest.mark.integration
class TestLoadBalancing:
    """Least busy: the fewest in-flight requests among min(n, check_size) sampled workers."""

    @pytest.mark.parametrize(
        ("worker_loads", "expected_workers"),
        [
            ({"http://worker1:8000": 0, "http://worker2:8000": 5}, {"http://worker1:8000"}),
            ({"http://worker1:8000": 3, "http://worker2:8000": 1}, {"http://worker2:8000"}),
            (
                {"http://worker1:8000": 2, "http://worker2:8000": 2},
                {"http://worker1:8000", "http://worker2:8000"},
            ),
            (
                {"http://w1:8000": 4, "http://w2:8000": 1, "http://w3:8000": 1},
                {"http://w2:8000", "http://w3:8000"},
            ),
            ({f"http://w{i}:8000": 9 - i for i in range(5)}, {"http://w4:8000"}),
        ],
    )
    def test_least_busy_worker_selection(
        self, worker_loads: dict[str, int], expected_workers: set[str]
    ) -> None:
        """With n <= check_size the least busy worker wins; every tied worker gets picked sometimes."""
        registry = Registry()
        for address, load in worker_loads.items():
            registry.add(address)[0].in_flight = load
        policy = LeastBusy(check_size=5, rng=random.Random(7))
        chosen = {policy.choose(registry.all(), RoutingContext()).address for _ in range(200)}
        assert chosen == expected_workers

    def test_check_size_sampling(self) -> None:
        """With check_size=2 of 4 workers the busiest is never chosen and the idlest only when sampled."""
        registry = Registry()
        for i in range(4):
            registry.add(f"http://w{i}:8000")[0].in_flight = i
        policy = LeastBusy(check_size=2, rng=random.Random(11))
        chosen = Counter(policy.choose(registry.all(), RoutingContext()).address for _ in range(1000))
        assert "http://w3:8000" not in chosen
        assert 350 < chosen["http://w0:8000"] < 650  # sampled with probability 1/2

    def test_busy_worker_is_avoided(
        self, client: httpx.Client, farm: FakeWorkerFarm, add_workers: AddWorkers
    ) -> None:
        """While worker A holds a request, new requests go to the idle worker B."""
        (busy,) = add_workers(1, hold=True)
        with ThreadPoolExecutor(1) as pool:
            try:
                held = pool.submit(client.post, "/chat/completions", json={"model": "m"})
                wait_until(lambda: busy.held == 1, what="request held on A")
                (idle,) = add_workers(1)
                for _ in range(10):
                    assert client.post("/completions", json={"model": "m"}).json()["worker"] == idle.name
                assert len(busy.completions()) == 1
            finally:
                farm.release(busy)
            assert held.result().json()["worker"] == busy.name

    def test_idle_workers_all_used(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """Sequential requests over four idle workers (ties broken at random) reach all of them."""
        workers = add_workers(4)
        served = Counter(client.post("/chat/completions", json={}).json()["worker"] for _ in range(60))
        assert set(served) == {w.name for w in workers}
        assert sum(served.values()) == 60


@pytest.mark.integration
class TestErrorHandling:
    """Unknown routes, garbage, broken workers and vanished clients never crash or leak counts."""

    @pytest.mark.parametrize(
        ("method", "path"), [("GET", "/nope"), ("POST", "/v1/embeddings"), ("GET", "/v2/health")]
    )
    def test_unknown_path_404(self, client: httpx.Client, method: str, path: str) -> None:
        """An unknown path is a JSON 404."""
        assert_openai_error(client.request(method, path), 404)

    @pytest.mark.parametrize(
        ("method", "path"), [("GET", "/chat/completions"), ("POST", "/health"), ("DELETE", "/v1/workers")]
    )
    def test_wrong_method_405(self, client: httpx.Client, method: str, path: str) -> None:
        """A known path with the wrong method is a JSON 405 with Allow."""
        response = client.request(method, path)
        assert_openai_error(response, 405)
        assert response.headers["allow"]

    @pytest.mark.parametrize(
        "garbage",
        [
            b"\x00\xff\xfe\xfd\r\n\r\n",
            b"x" * 70000 + b"\r\n\r\n",
            b"GET /health HTTP/9.9\r\n\r\n",
            b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
            b"POST /completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"POST /completions HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
            b"POST /completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ],
    )
    def test_garbage_on_raw_socket(
        self, client: httpx.Client, balancer: BalancerThread, garbage: bytes
    ) -> None:
        """Bytes that are not HTTP get a 400 and a closed connection; the balancer keeps serving."""
        answer = raw_exchange(balancer.port, garbage)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert client.get("/health").text == "No workers available"

    def test_upgrade_request_gets_an_answer(self, client: httpx.Client, balancer: BalancerThread) -> None:
        """A request asking for a protocol upgrade is answered (refused or served), not dropped silently."""
        answer = raw_exchange(
            balancer.port,
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 ")
        assert client.get("/health").status_code == 503

    def test_worker_dies_mid_stream(self, client: httpx.Client, add_workers: AddWorkers) -> None:
        """A worker dying mid-stream truncates the client's stream (no [DONE]) and frees its count."""
        add_workers(1, stream_chunks=5, die_after_chunks=2)
        lines: list[str] = []
        with client.stream("POST", "/chat/completions", json={"stream": True}) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                lines.extend(response.iter_lines())
        events = sse_events(lines)
        assert "[DONE]" not in events
        assert len(events) <= 2
        wait_until(lambda: total_in_flight(client) == 0, what="in_flight back to 0")

    def test_client_disconnect_mid_stream(
        self, client: httpx.Client, balancer: BalancerThread, add_workers: AddWorkers
    ) -> None:
        """A client closing its socket mid-stream closes the worker's stream too and frees the count."""
        (worker,) = add_workers(1, stream_chunks=200, chunk_delay=0.1)
        body = b'{"stream": true}'
        request = b"POST /completions HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        with socket.create_connection(("127.0.0.1", balancer.port), timeout=15) as sock:
            sock.sendall(request)
            received = b""
            while b"data: " not in received:
                received += sock.recv(65536)
            assert total_in_flight(client) == 1
        wait_until(lambda: worker.broken_streams == 1, what="worker sees the stream closed")
        wait_until(lambda: total_in_flight(client) == 0, what="in_flight back to 0")
        assert worker.completed_streams == 0

    def test_client_disconnect_before_answer(
        self, client: httpx.Client, balancer: BalancerThread, farm: FakeWorkerFarm, add_workers: AddWorkers
    ) -> None:
        """A client leaving while the worker has not answered yet frees the count too."""
        (worker,) = add_workers(1, hold=True)
        body = b'{"model": "m"}'
        request = b"POST /chat/completions HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        try:
            with socket.create_connection(("127.0.0.1", balancer.port), timeout=15) as sock:
                sock.sendall(request)
                wait_until(lambda: worker.held == 1, what="request held")
                assert total_in_flight(client) == 1
            wait_until(lambda: total_in_flight(client) == 0, what="in_flight back to 0")
        finally:
            farm.release(worker)
