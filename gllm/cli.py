"""The `gllm` command: one sub-command per module, found through a name table."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from gllm import __version__


class CommandModule(Protocol):
    """What a sub-command module provides."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Sub-command name -> module path; imported lazily so `gllm --version` stays fast.
COMMANDS: dict[str, str] = {
    "start-balancer": "gllm.balancer.command",
    "start-worker": "gllm.worker.command",
    "start-cluster": "gllm.cluster.command",
    "sim-engine": "gllm.sim.command",
    "status": "gllm.ops.status",
    "load-model": "gllm.ops.load_model",
    "release-gpus": "gllm.ops.release_gpus",
}


def _load(module_path: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(module_path))


def build_parser(commands: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="gllm", description="GLLM: one endpoint for many LLM workers.")
    parser.add_argument("--version", action="version", version=f"gllm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in (commands or COMMANDS).items():
        try:
            module = _load(module_path)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_path.startswith(exc.name):
                continue  # a sub-command not built into this installation
            raise
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gllm` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module: CommandModule | None = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return 2
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
