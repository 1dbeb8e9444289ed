"""Scenario 1: SIGKILL one of four worker processes (and its engine) while streams and requests are in flight."""

from __future__ import annotations

import time

import psutil
import pytest

from gllm.testing.faults import MODEL, ProcessSet, record_figures, wait_workers_ready
from gllm.testing.load import LoadDriver, LoadSpec
from gllm.testing.net import wait_until

HEALTH_INTERVAL = 0.5  # the suite's --health-interval, --unhealthy-threshold and --health-timeout
UNHEALTHY_THRESHOLD = 2
HEALTH_TIMEOUT = 1.0
# Slack for a busy 2-core CI machine on top of the configured detection time.
SLACK = 5.0


@pytest.mark.integration
@pytest.mark.slow
class TestWorkerKilled:
    """A worker that dies costs no request: retries cover short ones, failover continues its streams."""

    def test_sigkill_one_of_four_workers(self, procs: ProcessSet) -> None:
        """Zero failed requests, every stream well-formed to [DONE], the dead worker ejected in time."""
        balancer = procs.balancer("--no-state-file")
        workers = [
            procs.worker(
                "--balancer", balancer.url, "--model", MODEL, "--register-interval", "3600", name=f"worker{i}"
            )
            for i in range(4)
        ]
        wait_workers_ready(balancer, [w.url for w in workers])
        victim = workers[1]
        total_before = balancer.requests_total()

        load = LoadDriver(balancer.url, LoadSpec(total=160, concurrency=12, request_id_prefix="kill")).start()
        load.wait_completed(16)
        # Streams are five times longer than plain requests, so what is in flight is mostly streams.
        wait_until(
            lambda: balancer.workers()[victim.url]["in_flight"] >= 2,
            timeout=30,
            interval=0.02,
            what="requests in flight on the victim",
        )
        in_flight_at_kill = balancer.workers()[victim.url]["in_flight"]
        victim_tree = [victim.pid, *(p.pid for p in victim.descendants())]
        killed_at = time.monotonic()
        victim.kill_tree()
        assert len(victim_tree) >= 2, "the victim ran no engine"
        assert not any(psutil.pid_exists(pid) and _running(pid) for pid in victim_tree)

        wait_until(
            lambda: balancer.workers()[victim.url]["ejected"],
            timeout=30,
            interval=0.02,
            what="victim ejected",
        )
        ejected_after = time.monotonic() - killed_at
        report = load.join()
        balancer.wait_idle()

        figures = balancer.scenario_figures(
            report,
            extra_attempts=balancer.requests_total() - total_before - report.figures()["sent"],
            in_flight_on_victim_at_kill=in_flight_at_kill,
            ejected_after_s=round(ejected_after, 2),
        )
        record_figures("1 SIGKILL one of 4 workers", figures)

        assert figures["failed"] == 0, report.describe_failures() + "\n" + procs.describe()
        assert figures["streams_continued"] >= 1, "no stream was in flight on the victim when it died"
        assert figures["balancer_failovers"] >= figures["streams_continued"]
        # The budget carries over the break: every stream, continued or not, has exactly max_tokens tokens.
        spec = load.spec
        assert {o.pieces for o in report.outcomes if o.stream} == {spec.stream_max_tokens}
        detection = UNHEALTHY_THRESHOLD * (HEALTH_INTERVAL + HEALTH_TIMEOUT) + HEALTH_INTERVAL
        assert ejected_after <= detection + SLACK
        view = balancer.workers()
        assert not view[victim.url]["healthy"]
        assert all(view[w.url]["in_flight"] == 0 for w in workers)
        assert all(not view[w.url]["ejected"] for w in workers if w is not victim)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
