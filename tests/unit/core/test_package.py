"""The package's public surface and the `gllm` command's table."""

from __future__ import annotations

import pytest

import gllm
from gllm.cli import COMMANDS, build_parser

pytestmark = pytest.mark.unit


class TestPublicAPI:
    """`gllm` exports exactly its public names."""

    def test_all_names_resolve(self) -> None:
        """Every name in __all__ is importable from the package."""
        for name in gllm.__all__:
            assert getattr(gllm, name) is not None

    def test_client_classes_exported(self) -> None:
        """The client classes and the error come from the top-level package."""
        from gllm import GLLM, AsyncGLLM, RemoteError

        assert GLLM.__name__ == "GLLM"
        assert AsyncGLLM.__name__ == "AsyncGLLM"
        assert issubclass(RemoteError, Exception)

    def test_unknown_attribute_raises(self) -> None:
        """A name that is not exported raises AttributeError."""
        with pytest.raises(AttributeError):
            _ = gllm.NoSuchThing  # type: ignore[attr-defined]


class TestCommandTable:
    """Every sub-command in the table builds its parser."""

    def test_every_command_is_available(self) -> None:
        """Each table entry becomes a sub-command."""
        parser = build_parser()
        actions = [a for a in parser._actions if a.dest == "command"]
        assert set(COMMANDS) <= set(actions[0].choices)  # type: ignore[arg-type]

    def test_version_flag(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`gllm --version` prints the version."""
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["--version"])
        assert exc.value.code == 0
        assert gllm.__version__ in capsys.readouterr().out
