"""Scenario 3: a worker whose health check alternates 200 / 503 on every probe while it serves normally."""

from __future__ import annotations

import pytest

from gllm.testing.fault_servers import FrontServers
from gllm.testing.faults import ProcessSet, record_figures
from gllm.testing.load import LoadDriver, LoadSpec


@pytest.mark.integration
@pytest.mark.slow
class TestWorkerFlapping:
    """One failed probe between passes never ejects: no request fails and there is no ejection storm."""

    def test_flapping_health_causes_no_failure_and_no_storm(
        self, procs: ProcessSet, fronts: FrontServers
    ) -> None:
        """Every request succeeds, the flapping worker keeps its share of traffic, ejections stay at most 1."""
        engines = procs.sim_replicas(4)
        flapper = fronts.add(engines[0], flap=True)
        balancer = procs.balancer("--no-state-file")
        for url in [flapper.url, *engines[1:]]:
            balancer.add_worker(url)
        probes_before = flapper.probes

        load = LoadDriver(balancer.url, LoadSpec(total=96, concurrency=8, request_id_prefix="flap")).start()
        report = load.join()
        balancer.wait_idle()
        probes = flapper.probes - probes_before

        view = balancer.workers()
        figures = balancer.scenario_figures(
            report,
            health_probes_during_load=probes,
            failed_probes_during_load=probes // 2,
            ejections=sum(w["ejections"] for w in view.values()),
            served_by_flapper=len(flapper.completions()),
        )
        record_figures("3 flapping worker (health 200/503 alternating)", figures)

        assert figures["failed"] == 0, report.describe_failures() + "\n" + procs.describe()
        assert probes >= 6, f"only {probes} health probes during the load: the flapping was not exercised"
        assert figures["ejections"] <= 1
        assert not view[flapper.url]["ejected"]
        assert len(flapper.completions()) >= report.figures()["sent"] // 8  # it kept a fair share
        assert all(w["in_flight"] == 0 for w in view.values())
