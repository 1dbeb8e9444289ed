"""Balancer settings: validation, environment, and the start-balancer flags."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from gllm.balancer import command
from gllm.balancer.config import DEFAULT_MAX_BODY_BYTES, BalancerConfig, env_check_size


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse start-balancer flags the way the CLI does."""
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(argv)


@pytest.mark.unit
class TestValidation:
    """Invalid settings are refused at start with a clear message."""

    def test_defaults(self) -> None:
        """The contract's defaults: all interfaces, check size 5, 32 MiB body limit, no generation timeout."""
        config = BalancerConfig()
        assert (config.host, config.check_size, config.max_body_bytes) == ("0.0.0.0", 5, 32 * 1024 * 1024)
        assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES
        assert config.request_timeout is None
        assert config.admin_key is None

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"port": -1}, "port"),
            ({"port": 65536}, "port"),
            ({"check_size": 0}, "check size"),
            ({"max_body_bytes": 10}, "max body size"),
            ({"connect_timeout": 0}, "connect timeout"),
            ({"health_timeout": -1.0}, "health timeout"),
            ({"load_model_timeout": 0}, "load model timeout"),
            ({"release_timeout": 0}, "release timeout"),
            ({"request_timeout": 0}, "request timeout"),
        ],
    )
    def test_invalid(self, overrides: dict[str, Any], message: str) -> None:
        """Each bad value raises ValueError naming the setting."""
        with pytest.raises(ValueError, match=message):
            BalancerConfig(**overrides)

    @pytest.mark.parametrize(
        ("host", "admin_key", "open_to_network"),
        [
            ("0.0.0.0", None, True),
            ("10.1.2.3", None, True),
            ("my-host", None, True),
            ("127.0.0.1", None, False),
            ("::1", None, False),
            ("localhost", None, False),
            ("0.0.0.0", "key", False),
        ],
    )
    def test_control_open_to_network(self, host: str, admin_key: str | None, open_to_network: bool) -> None:
        """The start warning is due only without a key on a non-loopback address."""
        assert BalancerConfig(host=host, admin_key=admin_key).control_open_to_network is open_to_network


@pytest.mark.unit
class TestEnvironment:
    """CHECK_SIZE and GLLM_ADMIN_KEY from the environment; flags win."""

    def test_check_size_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unset or blank CHECK_SIZE means 5."""
        monkeypatch.delenv("CHECK_SIZE", raising=False)
        assert env_check_size() == 5
        monkeypatch.setenv("CHECK_SIZE", "  ")
        assert env_check_size() == 5

    def test_check_size_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """CHECK_SIZE sets the check size when no flag is given."""
        monkeypatch.setenv("CHECK_SIZE", "2")
        assert command.config_from_args(parse(["-p", "0"])).check_size == 2

    def test_check_size_flag_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--check-size overrides CHECK_SIZE."""
        monkeypatch.setenv("CHECK_SIZE", "2")
        assert command.config_from_args(parse(["-p", "0", "--check-size", "7"])).check_size == 7

    @pytest.mark.parametrize("raw", ["abc", "1.5", "0", "-3"])
    def test_bad_check_size(self, monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
        """A CHECK_SIZE that is not a positive whole number is refused."""
        monkeypatch.setenv("CHECK_SIZE", raw)
        with pytest.raises(ValueError, match=r"CHECK_SIZE|check size"):
            command.config_from_args(parse(["-p", "0"]))

    def test_admin_key_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """GLLM_ADMIN_KEY sets the key; --admin-key overrides it."""
        monkeypatch.setenv("GLLM_ADMIN_KEY", "from-env")
        assert command.config_from_args(parse(["-p", "0"])).admin_key == "from-env"
        assert command.config_from_args(parse(["-p", "0", "--admin-key", "flag"])).admin_key == "flag"

    def test_empty_admin_key_is_no_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty GLLM_ADMIN_KEY leaves the control routes open rather than requiring an empty key."""
        monkeypatch.setenv("GLLM_ADMIN_KEY", "")
        assert command.config_from_args(parse(["-p", "0"])).admin_key is None


@pytest.mark.unit
class TestFlags:
    """The start-balancer flags of the contract."""

    def test_short_and_long_flags(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """-p, --ip, -ew (several URLs) and --load-model."""
        monkeypatch.delenv("CHECK_SIZE", raising=False)
        monkeypatch.delenv("GLLM_ADMIN_KEY", raising=False)
        args = parse(
            ["-p", "6000", "--ip", "127.0.0.1", "-ew", "http://a:1", "http://b:2", "--load-model", "m"]
        )
        config = command.config_from_args(args)
        assert (config.port, config.host, config.load_model) == (6000, "127.0.0.1", "m")
        assert config.existing_workers == ("http://a:1", "http://b:2")
        assert config.check_size == 5

    def test_defaults(self) -> None:
        """Default ip 0.0.0.0, no workers, no model."""
        args = parse(["--port", "6000"])
        assert (args.ip, args.existing_workers, args.load_model) == ("0.0.0.0", [], None)
