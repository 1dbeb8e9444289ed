"""`gllm sim-engine` flags become one SimConfig per replica."""

from __future__ import annotations

import argparse

import pytest

from gllm.cli import build_parser
from gllm.sim import command
from gllm.sim.config import SimConfig


def configs(*argv: str) -> list[SimConfig]:
    """Parse sim-engine flags and build the configs."""
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return command.build_configs(parser.parse_args(argv))


@pytest.mark.unit
class TestSimEngineFlags:
    """Flags map onto SimConfig fields; SimConfig keeps the defaults."""

    def test_defaults(self) -> None:
        """One engine on port 8000, every other value from SimConfig."""
        (config,) = configs()
        assert config == SimConfig(port=8000)

    def test_latency_and_cache_flags(self) -> None:
        """Each tunable lands in its field."""
        (config,) = configs(
            "--speed", "3", "--load-time", "2", "--prefill-time-per-token", "0.001",
            "--decode-base-step", "0.02", "--decode-per-seq-step", "0.001", "--max-num-seqs", "8",
            "--block-size", "32",
            "--num-gpu-blocks-override", "100", "--max-model-len", "2048", "--no-enable-prefix-caching",
            "--default-max-tokens", "5", "--eos-probability", "0.1", "--wake-time", "0",
            "--max-num-batched-tokens", "512",
        )  # fmt: skip
        assert (config.speed, config.load_time_s, config.prefill_time_per_token_s) == (3.0, 2.0, 0.001)
        assert (config.decode_base_step_s, config.decode_per_seq_step_s, config.max_num_seqs) == (
            0.02,
            0.001,
            8,
        )
        assert (config.block_size, config.num_blocks, config.max_model_len) == (32, 100, 2048)
        assert not config.enable_prefix_caching
        assert (config.default_max_tokens, config.eos_probability, config.wake_time_s) == (5, 0.1, 0.0)
        assert config.max_num_batched_tokens == 512

    def test_replicas(self) -> None:
        """Replica i listens on base-port + i and gets seed + i."""
        built = configs("--model", "m", "--replicas", "3", "--base-port", "9000", "--seed", "5")
        assert [c.port for c in built] == [9000, 9001, 9002]
        assert [c.seed for c in built] == [5, 6, 7]
        assert {c.name for c in built} == {"m"}

    def test_port_zero_gives_free_ports(self) -> None:
        """Port 0 stays 0 for every replica."""
        assert [c.port for c in configs("--port", "0", "--replicas", "2")] == [0, 0]

    def test_vllm_style_command(self) -> None:
        """`sim-engine MODEL --served-model-name N` with vLLM-only flags that are ignored."""
        (config,) = configs(
            "org/model", "--served-model-name", "short", "--tensor-parallel-size", "2", "--dtype", "auto",
            "--gpu-memory-utilization", "0.9", "--trust-remote-code",
        )  # fmt: skip
        assert (config.model, config.name) == ("org/model", "short")

    def test_several_served_names(self) -> None:
        """--served-model-name takes several names, like vLLM; the first is the main one."""
        (config,) = configs("--model", "org/tiny", "--served-model-name", "org/tiny", "tiny", "--port", "0")
        assert config.served_model_name == ("org/tiny", "tiny")
        assert config.name == "org/tiny"
        assert configs("--model", "org/tiny")[0].names == ("org/tiny",)

    @pytest.mark.parametrize(
        "argv",
        [
            ("--replicas", "0"),
            ("a", "--model", "b"),
            ("--port", "65535", "--replicas", "2"),
            ("--speed", "0"),
        ],
    )
    def test_errors(self, argv: tuple[str, ...]) -> None:
        """Inconsistent flags raise ValueError (reported by run as exit code 2)."""
        with pytest.raises(ValueError):
            configs(*argv)

    def test_run_reports_bad_flags(self, capsys: pytest.CaptureFixture[str]) -> None:
        """run() prints the problem and returns 2 without starting anything."""
        args = build_parser().parse_args(["sim-engine", "--replicas", "0"])
        assert command.run(args) == 2
        assert "--replicas" in capsys.readouterr().err

    def test_registered_in_cli(self) -> None:
        """`gllm sim-engine` exists."""
        args = build_parser().parse_args(["sim-engine", "--port", "0"])
        assert args._module is command
