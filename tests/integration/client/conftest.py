"""Fixtures for the client's integration tests: a real fake balancer on 127.0.0.1, and clients of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gllm.client import GLLM
from gllm.testing.fake_balancer import FakeBalancer
from gllm.testing.net import free_port

# Fast retries: the tests count attempts, they do not measure waits.
FAST_RETRIES: dict[str, Any] = {"max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def fake() -> Iterator[FakeBalancer]:
    """A fake balancer serving on a free port, stopped after the test."""
    balancer = FakeBalancer()
    balancer.start()
    try:
        yield balancer
    finally:
        balancer.stop()


@pytest.fixture
def gllm_client(fake: FakeBalancer) -> Iterator[GLLM]:
    """A GLLM client of the fake balancer with fast retries."""
    with GLLM(fake.url, **FAST_RETRIES) as gllm:
        yield gllm


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
