"""Stopping a cluster: Ctrl-C or SIGTERM ends every process it started, engines included, with exit code 0."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import pytest

from gllm.testing.cluster import DEMO_MODEL, ClusterProcess
from gllm.testing.net import wait_until

StartCluster = Callable[..., ClusterProcess]


def assert_all_gone(cluster: ClusterProcess) -> None:
    """Every process the cluster ever had is gone (within a generous deadline)."""
    wait_until(lambda: not cluster.leftovers(), timeout=30, what="no process left")


@pytest.mark.integration
@pytest.mark.slow
class TestShutdown:
    """The cluster stops everything it started, and says so."""

    def test_sigint_stops_balancer_workers_and_engines(self, start_cluster: StartCluster) -> None:
        """Ctrl-C on a serving cluster: exit code 0 and no descendant left, engines included."""
        cluster = start_cluster("--engine", "sim", "--workers", "0:1", "--load-model", DEMO_MODEL)
        cluster.wait_ready(2, DEMO_MODEL)
        kinds = [" ".join(p.cmdline()[3:4]) for p in cluster.descendants()]
        assert sorted(kinds) == ["sim-engine", "sim-engine", "start-balancer", "start-worker", "start-worker"]
        cluster.send(signal.SIGINT)
        assert cluster.wait(timeout=60) == 0, cluster.output()
        assert_all_gone(cluster)
        assert "cluster stopped" in cluster.output()

    def test_sigterm_while_workers_load(self, start_cluster: StartCluster) -> None:
        """SIGTERM before the workers are ready still stops everything cleanly."""
        cluster = start_cluster("--engine", "sim", "--num-workers", "2", "--load-model", DEMO_MODEL)
        cluster.wait_output("Press Ctrl-C to stop the cluster.")
        wait_until(lambda: len(cluster.find("start-worker")) == 2, timeout=30, what="workers started")
        cluster.send(signal.SIGTERM)
        assert cluster.wait(timeout=60) == 0, cluster.output()
        assert_all_gone(cluster)


@pytest.mark.integration
class TestStartFailures:
    """A cluster that cannot start says why, exits with code 1 and leaves nothing behind."""

    def test_busy_balancer_port_is_reported_before_anything_starts(self, start_cluster: StartCluster) -> None:
        """A port already in use: a readable message, and no child process was ever started."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            cluster = start_cluster("--engine", "sim", "--num-workers", "1", port=sock.getsockname()[1])
            assert cluster.wait(timeout=60) == 1
        assert "ports already in use" in cluster.output()
        assert "[balancer]" not in cluster.output()

    def test_balancer_that_cannot_bind_ends_the_run(self, start_cluster: StartCluster) -> None:
        """A balancer that exits before answering (an address not on this host) stops the run with code 1."""
        cluster = start_cluster("--engine", "sim", "--num-workers", "1", "--ip", "192.0.2.1")
        assert cluster.wait(timeout=60) == 1, cluster.output()
        assert "the balancer exited with code 1 before answering" in cluster.output()
        assert "[worker 0]" not in cluster.output()
        assert_all_gone(cluster)
