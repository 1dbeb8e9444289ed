"""The fuzz target: one balancer with two scripted workers per test module, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gllm.balancer.policies import POLICIES
from gllm.testing.fuzz import FuzzTarget


@pytest.fixture(scope="module")
def target() -> Iterator[FuzzTarget]:
    """A running balancer (short timeouts) in front of two workers that answer anything."""
    with FuzzTarget(
        health_interval=0.5, first_byte_timeout=5.0, idle_timeout=5.0, max_body_bytes=64 * 1024
    ) as t:
        yield t


@pytest.fixture(scope="module", params=sorted(POLICIES))
def policy_target(request: pytest.FixtureRequest) -> Iterator[FuzzTarget]:
    """The same target under each routing policy in turn."""
    with FuzzTarget(policy=request.param, health_interval=0.5, first_byte_timeout=5.0, idle_timeout=5.0) as t:
        yield t
