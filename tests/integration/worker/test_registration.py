"""Registration with a (fake) balancer: retries, model from the reply, periodic re-registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.engine import fake_engine_template
from gllm.worker.server import RunningWorker
from tests.integration.worker.conftest import FakeBalancer, LoopThread, WorkerFactory

BalancerFactory = Callable[..., FakeBalancer]


def status(worker: RunningWorker) -> dict[str, Any]:
    return dict(httpx.get(worker.url + "/status", timeout=10).json())


@pytest.mark.integration
class TestRegistration:
    """POST {balancer}/add_worker with the advertised address; the reply's model gets loaded."""

    def test_registers_and_loads_the_cluster_model(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """The balancer learns the address; the worker loads the model it names."""
        balancer = make_balancer(model="cluster-model")
        loop_thread.run(balancer.start())
        worker = make_worker(balancer=balancer.url, engine_cmd=fake_engine_template())
        wait_until(lambda: status(worker)["state"] == "ready", timeout=60, what="cluster model ready")
        assert status(worker)["model"] == "cluster-model"
        assert balancer.calls[0]["body"] == {"address": worker.url}
        registration = status(worker)["balancer"]
        assert registration["url"] == balancer.url
        assert registration["registrations"] >= 1

    def test_retries_until_the_balancer_starts(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """A balancer that is not up yet is retried with backoff; serving is not blocked meanwhile."""
        balancer = make_balancer(model="late-model")
        worker = make_worker(balancer=balancer.url, engine_cmd=fake_engine_template())
        wait_until(lambda: status(worker)["balancer"]["last_error"], timeout=30, what="a failed attempt")
        assert status(worker)["state"] == "idle"  # the worker serves while it retries
        loop_thread.run(balancer.start())
        wait_until(lambda: status(worker)["state"] == "ready", timeout=60, what="loaded after late balancer")
        assert status(worker)["model"] == "late-model"
        assert status(worker)["balancer"]["last_error"] is None

    def test_retries_after_errors(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """Non-200 answers are retried until a 200."""
        balancer = make_balancer(fail_first=2)
        loop_thread.run(balancer.start())
        worker = make_worker(balancer=balancer.url)
        wait_until(lambda: len(balancer.calls) >= 3, timeout=60, what="third attempt")
        wait_until(lambda: status(worker)["balancer"]["registrations"] == 1, timeout=30, what="registered")

    def test_reregisters_periodically_without_reloading(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """Registration repeats every interval; an unchanged model is not loaded again."""
        balancer = make_balancer(model="m")
        loop_thread.run(balancer.start())
        worker = make_worker(balancer=balancer.url, register_interval=0.2, engine_cmd=fake_engine_template())
        wait_until(lambda: status(worker)["state"] == "ready", timeout=60, what="ready")
        pid = status(worker)["engine_pid"]
        seen = len(balancer.calls)
        wait_until(lambda: len(balancer.calls) >= seen + 3, timeout=30, what="three more registrations")
        assert status(worker)["engine_pid"] == pid

    def test_restarted_balancer_learns_the_worker_again(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """A balancer restarted on the same port gets the worker back without anyone acting."""
        first = make_balancer()
        loop_thread.run(first.start())
        worker = make_worker(balancer=first.url, register_interval=0.2)
        wait_until(lambda: first.calls, timeout=30, what="first registration")
        loop_thread.run(first.stop())
        second = make_balancer(port=first.port)
        loop_thread.run(second.start())
        wait_until(lambda: second.calls, timeout=30, what="registration with the restarted balancer")
        assert second.calls[0]["body"] == {"address": worker.url}

    def test_empty_reply_loads_nothing(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """No cluster model: the worker stays idle."""
        balancer = make_balancer(model="")
        loop_thread.run(balancer.start())
        worker = make_worker(balancer=balancer.url)
        wait_until(lambda: status(worker)["balancer"]["registrations"] >= 1, timeout=30, what="registered")
        assert status(worker)["state"] == "idle"

    def test_admin_key_and_advertised_address(
        self, loop_thread: LoopThread, make_worker: WorkerFactory, make_balancer: BalancerFactory
    ) -> None:
        """The admin key goes as a Bearer token; --advertise-address replaces the derived address."""
        balancer = make_balancer()
        loop_thread.run(balancer.start())
        make_worker(balancer=balancer.url, admin_key="k1", advertise_address="http://worker.example:9000/")
        wait_until(lambda: balancer.calls, timeout=30, what="registration")
        assert balancer.calls[0]["authorization"] == "Bearer k1"
        assert balancer.calls[0]["body"] == {"address": "http://worker.example:9000"}
