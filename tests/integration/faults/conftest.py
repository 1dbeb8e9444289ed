"""Fixtures of the fault-injection suite: real processes and in-process fronts, all stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gllm.testing.fault_servers import FrontServers
from gllm.testing.faults import ProcessSet


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessSet]:
    """Balancer, worker and engine processes of one test; every one (and its children) killed afterwards."""
    processes = ProcessSet(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
def fronts() -> Iterator[FrontServers]:
    """Relays with faults (flapping health) and request records, in front of real engines."""
    servers = FrontServers()
    try:
        yield servers
    finally:
        servers.close()
