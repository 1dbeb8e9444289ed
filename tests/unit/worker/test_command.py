"""`gllm start-worker` flags and their validation."""

from __future__ import annotations

import argparse

import pytest

from gllm.worker import command
from gllm.worker.config import WorkerConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(argv)


@pytest.mark.unit
class TestFlags:
    """Defaults and mapping of flags to the config."""

    def test_defaults(self) -> None:
        """Port 8000 on 0.0.0.0, vLLM, engine on port + 10, the documented timings."""
        config = command.config_from_args(parse())
        assert (config.host, config.port, config.engine) == ("0.0.0.0", 8000, "vllm")
        assert config.resolved_engine_port == 8010
        assert config.supervisor.load_timeout == 1800
        assert config.supervisor.stop_grace == 15
        assert config.register_interval == 30
        assert config.request_timeout is None
        assert config.balancer is None

    def test_everything(self) -> None:
        """Every flag lands in the config."""
        args = parse(
            "-p", "9000", "--ip", "127.0.0.1", "--engine", "sglang", "--engine-port", "9500", "--gpus", "2,3",
            "--model", "m", "--balancer", "http://b:5333/", "--advertise-address", "http://w:9000",
            "--load-timeout", "60", "--stop-grace", "2", "--register-interval", "5", "--request-timeout", "30",
            "--admin-key", "k", "--engine-cmd", "x {model}",
        )  # fmt: skip
        config = command.config_from_args(args)
        assert config.port == 9000
        assert config.engine_spec().port == 9500
        assert config.gpus == ("2", "3")
        assert config.balancer == "http://b:5333"
        assert config.advertise_address == "http://w:9000"
        assert (config.supervisor.load_timeout, config.supervisor.stop_grace) == (60, 2)
        assert (config.register_interval, config.request_timeout, config.admin_key) == (5, 30, "k")
        assert config.engine_spec().launch("m").argv == ["x", "m"]

    def test_admin_key_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """GLLM_ADMIN_KEY is the default admin key."""
        monkeypatch.setenv("GLLM_ADMIN_KEY", "from-env")
        assert command.config_from_args(parse()).admin_key == "from-env"


@pytest.mark.unit
class TestValidation:
    """Wrong settings are refused before anything starts."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"engine": "nope"},
            {"port": 70000},
            {"port": 8000, "engine_port": 8000},
            {"port": 65530},
            {"balancer": "ftp://b"},
            {"balancer": "b:5333"},
            {"advertise_address": "w:1"},
            {"register_interval": 0},
        ],
    )
    def test_refused(self, kwargs: dict[str, object]) -> None:
        """Each is a ValueError."""
        with pytest.raises(ValueError):
            WorkerConfig(**kwargs)  # type: ignore[arg-type]

    def test_run_reports_bad_flags(self, capsys: pytest.CaptureFixture[str]) -> None:
        """run() prints the error and returns 2."""
        assert command.run(parse("--balancer", "nope")) == 2
        assert "--balancer must be an absolute" in capsys.readouterr().err
