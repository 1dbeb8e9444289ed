"""Active health checks: probe results counted against thresholds, so one failed probe never ejects."""

from __future__ import annotations

import asyncio

import pytest

from gllm.balancer.fanout import CallResult
from gllm.balancer.health import HealthChecker, HealthSettings, record_probe
from gllm.balancer.registry import Registry, Worker
from gllm.http.pool import UpstreamPool

SETTINGS = HealthSettings(interval=1.0, timeout=1.0, unhealthy_threshold=3, healthy_threshold=2)


def new_worker(address: str = "http://127.0.0.1:9") -> Worker:
    """A registered worker record."""
    worker, _ = Registry().add(address)
    return worker


def ejected(worker: Worker) -> bool:
    """Whether the worker is ejected (read through a call so the type checker does not pin it)."""
    return worker.ejected


def probe(worker: Worker, ok: bool) -> None:
    """Record one probe result: 200, or a connection error."""
    if ok:
        result = CallResult(worker, 200, b"", None)
    else:
        result = CallResult(worker, None, b"", "connection refused")
    record_probe(worker, result, SETTINGS)


def probes(worker: Worker, pattern: str) -> None:
    """Record probes from a pattern: `+` passed, `-` failed."""
    for mark in pattern:
        probe(worker, mark == "+")


@pytest.mark.unit
class TestEjection:
    """Failed probes eject only when `unhealthy_threshold` of them come in a row."""

    def test_single_failure_does_not_eject(self) -> None:
        """One failed probe marks the worker unhealthy but keeps it routable."""
        worker = new_worker()
        probes(worker, "-")
        assert worker.healthy is False
        assert not ejected(worker)
        assert worker.routable
        assert worker.last_error is not None
        assert "health check failed" in worker.last_error

    def test_threshold_failures_in_a_row_eject(self) -> None:
        """The third failure in a row ejects, once."""
        worker = new_worker()
        probes(worker, "--")
        assert not ejected(worker)
        probes(worker, "-")
        assert ejected(worker)
        assert not worker.routable
        assert worker.ejections == 1
        probes(worker, "---")
        assert worker.ejections == 1  # still the same ejection

    def test_alternating_results_never_eject(self) -> None:
        """A flapping worker (pass, fail, pass, ...) is never ejected: no flapping in and out."""
        worker = new_worker()
        probes(worker, "-+" * 20)
        assert not ejected(worker)
        assert worker.ejections == 0

    def test_two_failures_then_pass_resets(self) -> None:
        """A pass resets the consecutive failure count."""
        worker = new_worker()
        probes(worker, "--+--")
        assert not ejected(worker)
        assert worker.health_failures == 2

    def test_non_2xx_status_is_a_failure(self) -> None:
        """A 503 answer counts as a failed probe, and says so in last_error."""
        worker = new_worker()
        for _ in range(3):
            record_probe(worker, CallResult(worker, 503, b"loading", None), SETTINGS)
        assert ejected(worker)
        assert worker.last_error is not None
        assert "503" in worker.last_error


@pytest.mark.unit
class TestReadmission:
    """An ejected worker comes back after `healthy_threshold` passes in a row."""

    def test_comes_back_after_threshold_passes(self) -> None:
        """One pass is not enough; the second readmits."""
        worker = new_worker()
        probes(worker, "---")
        probes(worker, "+")
        assert ejected(worker)
        assert worker.healthy is True
        probes(worker, "+")
        assert not ejected(worker)
        assert worker.routable

    def test_interrupted_passes_start_over(self) -> None:
        """Pass, fail, pass does not readmit."""
        worker = new_worker()
        probes(worker, "---+-+")
        assert ejected(worker)

    def test_second_ejection_is_counted(self) -> None:
        """Ejections counts every time a worker is taken out."""
        worker = new_worker()
        probes(worker, "---++---")
        assert ejected(worker)
        assert worker.ejections == 2


@pytest.mark.unit
class TestSettings:
    """Invalid health settings are refused."""

    @pytest.mark.parametrize(
        ("interval", "timeout", "unhealthy", "healthy"),
        [(0.0, 1.0, 1, 1), (1.0, 0.0, 1, 1), (-1.0, 1.0, 1, 1), (1.0, 1.0, 0, 1), (1.0, 1.0, 1, 0)],
    )
    def test_invalid(self, interval: float, timeout: float, unhealthy: int, healthy: int) -> None:
        """Non-positive times and thresholds below 1 raise ValueError."""
        with pytest.raises(ValueError, match="health"):
            HealthSettings(interval, timeout, unhealthy, healthy)


class _Health(asyncio.Protocol):
    """Answers every request with a fixed status line and closes."""

    def __init__(self, status: bytes) -> None:
        self._status = status
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data and self._transport is not None:
            self._transport.write(
                b"HTTP/1.1 " + self._status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            self._transport.close()


@pytest.mark.unit
class TestHealthChecker:
    """probe_all probes every worker concurrently over loopback and records each result."""

    def test_probe_all_records_each_worker(self) -> None:
        """A 200 worker stays in; a 503 worker and a refused port are counted as failures."""

        async def scenario() -> list[Worker]:
            loop = asyncio.get_running_loop()
            good = await loop.create_server(lambda: _Health(b"200 OK"), "127.0.0.1", 0)
            bad = await loop.create_server(lambda: _Health(b"503 Service Unavailable"), "127.0.0.1", 0)
            closed = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
            closed_port = closed.sockets[0].getsockname()[1]
            closed.close()
            await closed.wait_closed()
            registry = Registry()
            for server in (good, bad):
                registry.add(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
            registry.add(f"http://127.0.0.1:{closed_port}")
            pool = UpstreamPool(connect_timeout=1.0)
            checker = HealthChecker(registry, pool, HealthSettings(1.0, 1.0, 2, 1))
            try:
                for _ in range(2):
                    results = await checker.probe_all()
                    assert [r.ok for r in results] == [True, False, False]
            finally:
                pool.close()
                good.close()
                bad.close()
            return registry.all()

        good_worker, bad_worker, closed_worker = asyncio.run(scenario())
        assert (good_worker.healthy, good_worker.ejected) == (True, False)
        assert (bad_worker.healthy, bad_worker.ejected) == (False, True)
        assert (closed_worker.healthy, closed_worker.ejected) == (False, True)
