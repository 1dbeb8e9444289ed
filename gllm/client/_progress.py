"""The progress bar of wait_for_model: rich on a terminal, nothing elsewhere."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol, TextIO

from gllm.client._workers import Readiness

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def load_progress_bar(console: Console) -> Progress:
    """The bar every model-load view shares: spinner, model, workers ready out of all, detail, time."""
    from rich.progress import (  # imported here: rich is needed only once a bar is drawn
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )


class ProgressReporter(Protocol):
    """Shows how far a model load has got."""

    def update(self, state: Readiness) -> None:
        """Show the latest state."""

    def close(self) -> None:
        """Stop showing anything."""


class NullProgress:
    """Shows nothing (stderr is not a terminal, or progress was turned off)."""

    def update(self, state: Readiness) -> None:
        """Ignore the state."""

    def close(self) -> None:
        """Nothing to stop."""


class RichProgress:
    """A rich progress bar: workers ready out of all workers, with the other states beside it."""

    def __init__(self, model: str, stream: TextIO, force_terminal: bool | None = None) -> None:
        from rich.console import Console

        self._progress = load_progress_bar(Console(file=stream, force_terminal=force_terminal))
        self._task: TaskID = self._progress.add_task(f"Loading {model}", total=None, detail="workers: ?")
        self._progress.start()

    def update(self, state: Readiness) -> None:
        """Move the bar to the number of ready workers."""
        self._progress.update(
            self._task, total=state.total or None, completed=state.ready, detail=state.summary()
        )

    def close(self) -> None:
        """Draw the last state and release the terminal."""
        self._progress.stop()


def make_progress(model: str, enabled: bool | None, stream: TextIO | None = None) -> ProgressReporter:
    """A rich bar when `enabled`, or when `enabled` is None and the stream (default stderr) is a terminal."""
    out = sys.stderr if stream is None else stream
    if enabled is None:
        enabled = _is_terminal(out)
    return RichProgress(model, out) if enabled else NullProgress()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or unusual streams
        return False
