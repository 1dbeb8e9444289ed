"""Scenario 2: a worker that accepts connections and never answers."""

from __future__ import annotations

import pytest

from gllm.testing.fake_worker import FakeWorkerFarm
from gllm.testing.faults import ProcessSet, record_figures
from gllm.testing.load import LoadDriver, LoadSpec
from gllm.testing.net import wait_until


@pytest.mark.integration
@pytest.mark.slow
class TestWorkerHung:
    """Requests sent to a silent worker time out onto the others; health checks eject it."""

    def test_silent_worker_times_out_onto_others(self, procs: ProcessSet, farm: FakeWorkerFarm) -> None:
        """No client failure; the hung worker got requests, they were retried elsewhere, and it is ejected."""
        engines = procs.sim_replicas(3)
        balancer = procs.balancer("--no-state-file")
        for url in engines:
            balancer.add_worker(url)
        hung = farm.add_hung()
        balancer.add_worker(hung)  # just before the load: the first requests are spread over all four

        load = LoadDriver(balancer.url, LoadSpec(total=64, concurrency=8, request_id_prefix="hung")).start()
        wait_until(
            lambda: balancer.workers()[hung]["ejected"], timeout=30, interval=0.05, what="hung ejected"
        )
        report = load.join()
        balancer.wait_idle()

        view = balancer.workers()
        figures = report.figures()
        retries, failovers = balancer.retries(), balancer.failovers()
        timeouts = balancer.log_count("sent nothing")
        figures.update(
            in_flight_after=balancer.in_flight(),
            retried=retries + failovers,
            balancer_retries=retries,
            balancer_failovers=failovers,
            sent_to_hung=view[hung]["requests_total"],
            hung_last_error=str(view[hung]["last_error"])[:80],
            timed_out_attempts=timeouts,
        )
        record_figures("2 hung worker (accepts, never answers)", figures)

        assert figures["failed"] == 0, report.describe_failures() + "\n" + procs.describe()
        assert view[hung]["requests_total"] >= 1, "the hung worker never got a request: nothing was tested"
        # Every request it swallowed timed out (first-byte timeout) and was retried on another worker.
        assert timeouts == view[hung]["requests_total"]
        assert retries >= timeouts
        assert view[hung]["ejected"]
        assert not view[hung]["healthy"]
        slow = [o for o in report.outcomes if o.finished - o.started >= 2.5]
        assert slow, "no request waited for the first-byte timeout"
        assert all(w["in_flight"] == 0 for w in view.values())
