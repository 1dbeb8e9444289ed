"""Fixtures: real `gllm start-cluster` processes on simulated engines, always torn down with their whole tree."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gllm.testing.cluster import DEMO_MODEL as MODEL
from gllm.testing.cluster import ClusterProcess


@pytest.fixture
def start_cluster() -> Iterator[Callable[..., ClusterProcess]]:
    """Factory: start a cluster with the given extra flags; every one started is killed after the test."""
    started: list[ClusterProcess] = []

    def start(*args: str, workers: int = 2, port: int | None = None) -> ClusterProcess:
        cluster = ClusterProcess(*args, workers=workers, port=port)
        started.append(cluster)
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.close()


@pytest.fixture(scope="module")
def served_cluster() -> Iterator[ClusterProcess]:
    """One sim cluster of two workers serving MODEL, shared by a module's tests (each restores it)."""
    cluster = ClusterProcess("--engine", "sim", "--workers", "0:1", "--load-model", MODEL, workers=2)
    try:
        cluster.wait_ready(2, MODEL)
        yield cluster
    finally:
        cluster.close()
