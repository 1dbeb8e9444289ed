"""Fixtures for the simulated engine's integration tests: engines in a background thread, HTTP clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gllm.sim import BackgroundSimCluster, EngineHandle
from gllm.testing.sim import fast_config


@pytest.fixture
def start_engines() -> Iterator[Callable[..., BackgroundSimCluster]]:
    """Factory: start engines from config overrides (one dict per engine); all stopped after the test."""
    started: list[BackgroundSimCluster] = []

    def start(*overrides: dict[str, Any], wait_ready: bool = True) -> BackgroundSimCluster:
        cluster = BackgroundSimCluster([fast_config(**o) for o in overrides or ({},)], wait_ready=wait_ready)
        started.append(cluster)
        cluster.start()
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()


@pytest.fixture
def engine(start_engines: Callable[..., BackgroundSimCluster]) -> EngineHandle:
    """One fast engine serving `sim-model`."""
    return start_engines().engines[0]


@pytest.fixture
def http(engine: EngineHandle) -> Iterator[httpx.Client]:
    """An HTTP client bound to the engine."""
    with httpx.Client(base_url=engine.url, timeout=30.0) as client:
        yield client
