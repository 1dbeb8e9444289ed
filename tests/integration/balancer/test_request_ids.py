"""Request ids end to end, and the optional access log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm

pytestmark = pytest.mark.integration

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class TestRequestIds:
    """Every request gets an id that the client and the worker both see."""

    def test_generated_id_returned_and_forwarded(
        self, client: httpx.Client, add_workers: Callable[..., list[FakeWorker]]
    ) -> None:
        """Without X-Request-Id the balancer makes one, sends it to the worker and returns it."""
        (worker,) = add_workers(1)
        response = client.post("/v1/chat/completions", json=CHAT)
        request_id = response.headers["x-request-id"]
        assert request_id
        assert _header(worker, "x-request-id") == request_id

    def test_ids_are_unique(self, client: httpx.Client, add_workers: Callable[..., list[FakeWorker]]) -> None:
        """Two requests get two ids."""
        add_workers(1)
        ids = {client.post("/v1/chat/completions", json=CHAT).headers["x-request-id"] for _ in range(5)}
        assert len(ids) == 5

    def test_client_id_kept(self, client: httpx.Client, add_workers: Callable[..., list[FakeWorker]]) -> None:
        """A client's own id is used, forwarded once, and returned."""
        (worker,) = add_workers(1)
        response = client.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"
        assert _header(worker, "x-request-id") == "abc-123"

    def test_error_answers_carry_id(self, client: httpx.Client) -> None:
        """The balancer's own error answers carry the id too."""
        response = client.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "err-1"})
        assert response.status_code == 503
        assert response.headers["x-request-id"] == "err-1"

    def test_unsafe_client_id_replaced(
        self, client: httpx.Client, add_workers: Callable[..., list[FakeWorker]]
    ) -> None:
        """An over-long client id is replaced by one made here."""
        add_workers(1)
        response = client.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "x" * 500})
        assert response.headers["x-request-id"] != "x" * 500


class TestAccessLog:
    """One line per request when asked, none otherwise."""

    def test_access_line_has_id_worker_status(
        self,
        make_balancer: Callable[..., BalancerThread],
        farm: FakeWorkerFarm,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The line names the request id, the worker, the status and the tokens."""
        balancer = make_balancer(access_log=True)
        worker = farm.add()
        with httpx.Client(base_url=balancer.url, timeout=30) as http:
            http.post("/add_worker", json={"address": worker.url})
            with caplog.at_level(logging.INFO, logger="gllm.access"):
                http.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "log-1"})
                balancer.run(_settle())
        lines = [r for r in caplog.records if r.name == "gllm.access"]
        assert len(lines) == 1
        record = lines[0]
        assert record.__dict__["request_id"] == "log-1"
        assert record.__dict__["worker"] == worker.url
        assert record.__dict__["status"] == 200
        assert record.__dict__["completion_tokens"] == 3

    def test_no_access_log_by_default(
        self,
        client: httpx.Client,
        add_workers: Callable[..., list[FakeWorker]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Without --access-log nothing is logged per request."""
        add_workers(1)
        with caplog.at_level(logging.INFO, logger="gllm.access"):
            client.post("/v1/chat/completions", json=CHAT)
        assert not [r for r in caplog.records if r.name == "gllm.access"]


async def _settle() -> None:
    """Let the balancer's loop finish the request's bookkeeping."""


def _header(worker: FakeWorker, name: str) -> str:
    """A header of the worker's last completion request, by case-insensitive name."""
    headers = {k.lower(): v for k, v in worker.completions()[-1].headers.items()}
    return headers[name]
