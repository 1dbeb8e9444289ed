"""Shared fixtures: a fresh balancer per test, real fake workers, an HTTP client bound to the balancer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour


@pytest.fixture
def farm() -> Iterator[FakeWorkerFarm]:
    """Fake workers on 127.0.0.1, all stopped after the test."""
    farm = FakeWorkerFarm()
    try:
        yield farm
    finally:
        farm.close()


@pytest.fixture
def make_balancer() -> Iterator[Callable[..., BalancerThread]]:
    """Factory for balancers with custom settings (each stopped after the test)."""
    started: list[BalancerThread] = []

    def make(**overrides: Any) -> BalancerThread:
        balancer = BalancerThread(**overrides).start()
        started.append(balancer)
        return balancer

    try:
        yield make
    finally:
        for balancer in started:
            balancer.stop()


@pytest.fixture
def reset_balancer_state(make_balancer: Callable[..., BalancerThread]) -> BalancerThread:
    """A fresh balancer with no workers and no model: no state is shared between tests."""
    return make_balancer()


@pytest.fixture
def balancer(reset_balancer_state: BalancerThread) -> BalancerThread:
    """The test's balancer (same instance as `reset_balancer_state`)."""
    return reset_balancer_state


@pytest.fixture
def client(reset_balancer_state: BalancerThread) -> Iterator[httpx.Client]:
    """An HTTP client bound to the test's balancer."""
    with httpx.Client(base_url=reset_balancer_state.url, timeout=30.0) as http:
        yield http


@pytest.fixture
def add_workers(farm: FakeWorkerFarm, client: httpx.Client) -> Callable[..., list[FakeWorker]]:
    """Start `n` fake workers with a behaviour and register them with the balancer."""

    def add(n: int = 1, **behaviour: Any) -> list[FakeWorker]:
        workers = [farm.add(WorkerBehaviour(**behaviour)) for _ in range(n)]
        for worker in workers:
            assert client.post("/add_worker", json={"address": worker.url}).status_code == 200
        return workers

    return add
