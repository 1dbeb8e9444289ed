"""Following a model load across the cluster: which workers became ready, and how long each took.

Pure bookkeeping over `GET /workers` snapshots, so it is tested without a balancer; `LoadProgressBar` draws it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console

from gllm.client import WorkerStatus
from gllm.client._progress import load_progress_bar

ALREADY_LOADED_S = 0.5  # ready this soon after the request: the worker already had the model


@dataclass(frozen=True)
class LoadEvent:
    """A worker became ready (detail: seconds) or failed (detail: its error)."""

    kind: Literal["ready", "failed"]
    address: str
    seconds: float
    error: str = ""

    def describe(self) -> str:
        """One line for the terminal."""
        if self.kind == "failed":
            return f"[bold red]x[/] {self.address} failed: {self.error or 'no detail'}"
        if self.seconds < ALREADY_LOADED_S:
            return f"[green]✓[/] {self.address} ready (already loaded)"
        return f"[green]✓[/] {self.address} ready, loaded in {self.seconds:.1f}s"


@dataclass
class LoadTracker:
    """Workers becoming ready with `model`, timed from `started` (the worker's own load time when reported)."""

    model: str
    started: float
    ready: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    total: int = 0
    states: Counter[str] = field(default_factory=Counter)

    def update(self, workers: Sequence[WorkerStatus], now: float) -> list[LoadEvent]:
        """Take a snapshot; return what changed since the last one."""
        events: list[LoadEvent] = []
        self.total = len(workers)
        self.states = Counter()
        for worker in workers:
            if worker.is_ready_with(self.model):
                self.states["ready"] += 1
                if worker.address not in self.ready:
                    reported = worker.raw.get("load_duration_s")
                    seconds = float(reported) if isinstance(reported, int | float) else now - self.started
                    self.ready[worker.address] = seconds
                    events.append(LoadEvent("ready", worker.address, seconds))
            elif worker.state == "failed":
                self.states["failed"] += 1
                if worker.address not in self.failed:
                    self.failed[worker.address] = worker.error or ""
                    events.append(LoadEvent("failed", worker.address, now - self.started, worker.error or ""))
            else:
                self.states[worker.state or "unknown"] += 1
        return events

    @property
    def done(self) -> bool:
        """Every worker (at least one) is ready with the model."""
        return self.total > 0 and self.states["ready"] == self.total

    def summary(self) -> str:
        """'2/4 ready (loading: 2)'."""
        others = ", ".join(f"{s}: {n}" for s, n in sorted(self.states.items()) if s != "ready" and n)
        text = f"{self.states['ready']}/{self.total} ready"
        return f"{text} ({others})" if others else text


class LoadProgressBar:
    """A rich progress bar of ready workers, with a line printed above it as each worker finishes."""

    def __init__(self, model: str, console: Console) -> None:
        self._progress = load_progress_bar(console)
        self._task = self._progress.add_task(f"Loading {model}", total=None, detail="")

    def __enter__(self) -> LoadProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def show(self, tracker: LoadTracker, events: Sequence[LoadEvent], note: str = "") -> None:
        """Print the new events and move the bar."""
        for event in events:
            self._progress.console.print("  " + event.describe(), highlight=False)
        self._progress.update(
            self._task,
            total=tracker.total or None,
            completed=tracker.states["ready"],
            detail=note or tracker.summary(),
        )
