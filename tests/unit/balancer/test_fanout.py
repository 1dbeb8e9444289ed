"""Results of calls fanned out to every worker, and how failures are named."""

from __future__ import annotations

import pytest

from gllm.balancer.fanout import CallResult, failures
from gllm.balancer.registry import Registry


@pytest.mark.unit
class TestCallResult:
    """A 2xx is success; anything else is described with the worker's address."""

    def test_ok(self) -> None:
        """Only 2xx statuses are ok; no status (network error) is not."""
        worker, _ = Registry().add("http://a:1")
        assert CallResult(worker, 200, b"", None).ok
        assert CallResult(worker, 204, b"", None).ok
        assert not CallResult(worker, 500, b"", None).ok
        assert not CallResult(worker, None, b"", "refused").ok

    def test_failures_name_failed_workers_only(self) -> None:
        """`failures` lists each failed worker with its reason, skipping the ones that succeeded."""
        registry = Registry()
        good, bad, gone = (registry.add(f"http://{n}:1")[0] for n in ("good", "bad", "gone"))
        text = failures(
            [
                CallResult(good, 200, b"ok", None),
                CallResult(bad, 500, b"  out of memory \n", None),
                CallResult(gone, None, b"", "connection refused"),
            ]
        )
        assert text == "http://bad:1 (HTTP 500: out of memory), http://gone:1 (connection refused)"
