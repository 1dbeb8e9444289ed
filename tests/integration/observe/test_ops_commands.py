"""`gllm status`, `gllm load-model` and `gllm release-gpus` against a real balancer, as a user runs them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gllm.cli import main
from gllm.testing import free_port, wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.engine import process_gone
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour
from gllm.testing.observe import Observed, SimWorkers

AddWorkers = Callable[..., list[FakeWorker]]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are drawn 200 columns wide, so that nothing is cut in the captured output."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("GLLM_BALANCER", raising=False)
    monkeypatch.delenv("GLLM_ADMIN_KEY", raising=False)


@pytest.mark.integration
class TestStatus:
    """`gllm status` shows every worker; `--watch` redraws; an unreachable balancer is one line and exit 1."""

    def test_table(
        self,
        observed: Observed,
        balancer: BalancerThread,
        client: httpx.Client,
        add_workers: AddWorkers,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each worker's address, state and model; totals; the policy."""
        workers = add_workers(2, model="org/model-a")
        wait_until(
            lambda: all(w["state"] == "ready" for w in client.get("/workers").json()),
            timeout=30,
            what="ready",
        )
        assert main(["status", "--balancer", balancer.url]) == 0
        out = capsys.readouterr().out
        for worker in workers:
            line = next(line for line in out.splitlines() if worker.url.split("://")[1] in line)
            assert "ready" in line
            assert "org/model-a" in line
            assert "closed" in line  # the breaker
        assert "policy least_busy" in out
        assert "2 workers" in out

    def test_watch(
        self,
        observed: Observed,
        balancer: BalancerThread,
        add_workers: AddWorkers,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """--watch redraws after each interval until Ctrl-C, which ends it cleanly."""
        add_workers(1, model="m")
        naps: list[float] = []

        def nap(seconds: float) -> None:
            naps.append(seconds)
            if len(naps) == 3:
                raise KeyboardInterrupt

        monkeypatch.setattr("gllm.ops.status.time.sleep", nap)
        assert main(["status", "--balancer", balancer.url, "--watch", "--interval", "0.5"]) == 0
        assert naps == [0.5, 0.5, 0.5]
        assert "GLLM cluster" in capsys.readouterr().out

    def test_unreachable(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Nothing listening: exit 1 with one line on stderr naming the address."""
        url = f"http://127.0.0.1:{free_port()}"
        assert main(["status", "--balancer", url]) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"gllm: error: cannot reach the balancer at {url}")
        assert captured.out == ""


@pytest.mark.integration
class TestLoadAndRelease:
    """load-model --wait with real workers and simulated engines, then release-gpus."""

    def test_load_wait_then_release(
        self,
        observed: Observed,
        balancer: BalancerThread,
        client: httpx.Client,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Every worker becomes ready with a load time shown; status shows the model; release stops every engine."""
        with SimWorkers(2) as sims:
            for url in sims.urls:
                assert client.post("/add_worker", json={"address": url}).status_code == 200
            assert main(["load-model", "sim-model", "--wait", "--timeout", "120", "-b", balancer.url]) == 0
            out = capsys.readouterr().out
            assert "Model load requested: sim-model" in out
            for url in sims.urls:
                assert f"{url} ready" in out
            assert "sim-model ready on 2 worker(s)" in out
            pids = [w.context.supervisor.status().engine_pid for w in sims.workers]
            assert all(pids)

            assert main(["status", "-b", balancer.url]) == 0
            assert "model sim-model" in capsys.readouterr().out

            assert main(["release-gpus", "-b", balancer.url]) == 0
            out = capsys.readouterr().out
            assert "Gpus released" in out
            wait_until(lambda: all(process_gone(pid) for pid in pids if pid), timeout=30, what="engines gone")
            assert out.count("released") >= 2  # the table of worker states

    def test_failed_load(
        self,
        observed: Observed,
        balancer: BalancerThread,
        add_workers: AddWorkers,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A worker reporting failed ends the wait at once: exit 1, the worker named."""
        (worker,) = add_workers(1, state="failed")
        assert main(["load-model", "m", "--wait", "--timeout", "60", "-b", balancer.url]) == 1
        captured = capsys.readouterr()
        assert f"{worker.url} failed" in captured.out
        assert "failed to load on 1 worker(s)" in captured.err

    def test_wait_times_out(
        self,
        observed: Observed,
        balancer: BalancerThread,
        add_workers: AddWorkers,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A load that does not finish in time: exit 1 with how far it got."""
        add_workers(1, state="loading")
        assert (
            main(["load-model", "m", "--wait", "--timeout", "1", "--interval", "0.2", "-b", balancer.url])
            == 1
        )
        assert "m not ready within 1s: 0/1 ready (loading: 1)" in capsys.readouterr().err

    def test_release_failure(
        self,
        observed: Observed,
        balancer: BalancerThread,
        add_workers: AddWorkers,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A worker that cannot release: exit 1 with the balancer's message naming it."""
        (worker,) = add_workers(1, release_status=500)
        assert main(["release-gpus", "-b", balancer.url]) == 1
        err = capsys.readouterr().err
        assert "Failed to release gpus" in err
        assert worker.url in err


@pytest.mark.integration
class TestAdminKey:
    """Control commands send the admin key; without it the balancer's 401 is explained."""

    def test_key_needed(
        self,
        make_balancer: Callable[..., BalancerThread],
        farm: FakeWorkerFarm,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """No key: exit 1 naming 401 and --admin-key; the key from GLLM_ADMIN_KEY: accepted."""
        balancer = make_balancer(admin_key="sekret")
        worker = farm.add(WorkerBehaviour(model="m"))
        headers = {"Authorization": "Bearer sekret"}
        assert httpx.post(
            balancer.url + "/add_worker", json={"address": worker.url}, headers=headers
        ).is_success
        assert main(["load-model", "m", "-b", balancer.url]) == 1
        err = capsys.readouterr().err
        assert "401" in err
        assert "--admin-key" in err
        monkeypatch.setenv("GLLM_ADMIN_KEY", "sekret")
        assert main(["load-model", "m", "-b", balancer.url]) == 0
