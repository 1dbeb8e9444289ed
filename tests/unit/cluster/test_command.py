"""`gllm start-cluster` flags: parsing into a plan, and errors that stop the command before anything starts."""

from __future__ import annotations

import argparse

import psutil
import pytest

from gllm.cli import main
from gllm.cluster import command
from gllm.cluster.plan import ClusterPlan
from gllm.cluster.supervisor import RestartPolicy


def parse(*argv: str) -> argparse.Namespace:
    """Parse start-cluster flags."""
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(argv)


def plan(*argv: str) -> ClusterPlan:
    """The plan for these flags."""
    return command.plan_from_args(parse(*argv))


@pytest.mark.unit
class TestFlags:
    """The old GLLM command line still works, and the new flags do what they say."""

    def test_old_command_line(self) -> None:
        """--port 5333 --workers 0:3 --worker-port-range-start 8000: four vLLM workers on 8000..8300."""
        result = plan("--port", "5333", "--workers", "0:3", "--worker-port-range-start", "8000")
        assert result.engine == "vllm"
        assert [(s.gpus, s.port, s.engine_port) for s in result.workers] == [
            ((0,), 8000, 8010),
            ((1,), 8100, 8110),
            ((2,), 8200, 8210),
            ((3,), 8300, 8310),
        ]

    def test_short_flags_of_the_old_command(self) -> None:
        """-w and -wp are accepted as before."""
        result = plan("-p", "6000", "-w", "0:1", "2:3", "-wp", "9000", "--load-model", "m")
        assert (result.port, result.worker_port_start, result.load_model) == (6000, 9000, "m")
        assert [s.gpus for s in result.workers] == [(0, 1), (2, 3)]

    def test_sim_demo_flags(self) -> None:
        """--num-workers with the sim engine, a policy and a custom engine command."""
        result = plan(
            "--num-workers", "4", "--engine", "sim", "--policy", "least_busy", "--engine-cmd", "x {model}"
        )
        assert len(result.workers) == 4
        assert (result.engine, result.policy, result.engine_cmd) == ("sim", "least_busy", "x {model}")

    def test_admin_key_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --admin-key, GLLM_ADMIN_KEY is used; the flag wins over it."""
        monkeypatch.setenv("GLLM_ADMIN_KEY", "from-env")
        assert plan("--workers", "0").admin_key == "from-env"
        assert plan("--workers", "0", "--admin-key", "flag").admin_key == "flag"

    def test_worker_grace_is_half_of_ours(self) -> None:
        """Workers stop their engine within half the cluster's grace, so SIGKILL rarely comes to it."""
        assert plan("--workers", "0", "--stop-grace", "40").worker_stop_grace == 20.0
        assert plan("--workers", "0", "--stop-grace", "0").worker_stop_grace == 1.0


@pytest.mark.unit
class TestErrors:
    """Bad flags give exit code 2 and a message, and start no process at all."""

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--workers", "5:3"], "empty GPU range '5:3'"),
            (["--workers", "0:1", "1:2"], "GPU 1 is given to worker 0 and to worker 1"),
            (["--workers", "a"], "bad GPU spec 'a'"),
            (["--workers", "-1"], "negative GPU id"),
            (["--workers", ""], "empty --workers"),
            ([], "give --workers"),
            (["--workers", "0", "--port", "70000"], "out of range"),
            (["--workers", "0:999"], "beyond 65535"),
            (["--workers", "0", "--port", "8010"], "engine port of worker 0"),
            (["--workers", "0", "--stop-grace", "-1"], "--stop-grace must not be negative"),
            (["--workers", "0", "--startup-timeout", "0"], "--startup-timeout must be positive"),
        ],
    )
    def test_bad_flags(self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
        """The error names the problem; the cluster process has no child afterwards."""
        before = {p.pid for p in psutil.Process().children()}
        assert main(["start-cluster", *argv]) == 2
        assert message in capsys.readouterr().err
        assert {p.pid for p in psutil.Process().children()} <= before

    def test_workers_and_num_workers_exclude_each_other(self, capsys: pytest.CaptureFixture[str]) -> None:
        """argparse refuses both at once (exit code 2)."""
        with pytest.raises(SystemExit) as exc:
            parse("--workers", "0", "--num-workers", "2")
        assert exc.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.unit
class TestRestartPolicy:
    """Backoff before a restart."""

    def test_doubles_up_to_the_cap(self) -> None:
        """initial * 2**n, capped."""
        policy = RestartPolicy(initial_delay=1.0, max_delay=30.0)
        assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        assert policy.delay(10_000) == 30.0
