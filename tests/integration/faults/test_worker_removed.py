"""Scenario 5: POST /remove_worker while the worker serves streams."""

from __future__ import annotations

import time

import pytest

from gllm.testing.fault_servers import FrontServers
from gllm.testing.faults import ProcessSet, record_figures
from gllm.testing.load import LoadDriver, LoadSpec
from gllm.testing.net import wait_until


@pytest.mark.integration
@pytest.mark.slow
class TestWorkerRemoved:
    """A removed worker finishes what it serves and receives nothing new."""

    def test_remove_under_load(self, procs: ProcessSet, fronts: FrontServers) -> None:
        """Its in-flight streams complete unbroken; no request sent after the removal reaches it."""
        engines = procs.sim_replicas(4)
        leaving = fronts.add(engines[0])  # records every request that reaches the leaving worker
        balancer = procs.balancer("--no-state-file")
        for url in [leaving.url, *engines[1:]]:
            balancer.add_worker(url)

        load = LoadDriver(balancer.url, LoadSpec(total=120, concurrency=12, request_id_prefix="rm")).start()
        load.wait_completed(12)
        wait_until(lambda: leaving.open_streams >= 2, timeout=30, interval=0.01, what="streams on the worker")
        status = balancer.remove_worker(leaving.url)
        removed_at = time.monotonic()
        streams_at_removal = leaving.open_streams
        assert status == 200
        report = load.join()
        balancer.wait_idle()
        wait_until(lambda: leaving.open_streams == 0, timeout=30, what="the leaving worker's streams done")

        outcomes = {o.request_id: o for o in report.outcomes}
        arrived = [outcomes[a.request_id] for a in leaving.completions() if a.request_id in outcomes]
        late = [o.request_id for o in arrived if o.started > removed_at]
        sent_after = sum(o.started > removed_at for o in report.outcomes)
        figures = balancer.scenario_figures(
            report,
            streams_on_worker_at_removal=streams_at_removal,
            served_by_removed_worker=len(arrived),
            sent_after_removal=sent_after,
            reached_removed_worker_after_removal=len(late),
        )
        record_figures("5 remove a worker under load", figures)

        assert figures["failed"] == 0, report.describe_failures() + "\n" + procs.describe()
        assert leaving.streams_broken == 0
        assert leaving.streams_completed >= streams_at_removal
        assert figures["streams_continued"] == 0  # nothing broke, so nothing needed continuing
        assert sent_after >= 20, "the load ended too soon after the removal to show anything"
        assert late == []
        assert leaving.url not in balancer.workers()
