"""The balancer's memory across restarts: workers and cluster model in a local JSON file, written atomically."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gllm.balancer")


@dataclass(frozen=True, slots=True)
class SavedState:
    """What survives a restart."""

    workers: tuple[str, ...] = ()
    model: str | None = None


def default_state_path(port: int) -> Path:
    """`$XDG_STATE_HOME/gllm/balancer-PORT.json` (default `~/.local/state/...`)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gllm" / f"balancer-{port}.json"


def load_state(path: Path) -> SavedState:
    """Read a state file; a missing or unreadable file is an empty state (logged, never fatal)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return SavedState()
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable state file %s: %s", path, exc)
        return SavedState()
    workers = raw.get("workers") if isinstance(raw, dict) else None
    model = raw.get("model") if isinstance(raw, dict) else None
    return SavedState(
        tuple(w for w in workers if isinstance(w, str)) if isinstance(workers, list) else (),
        model if isinstance(model, str) and model else None,
    )


def write_state(path: Path, state: SavedState) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"version": 1, "workers": list(state.workers), "model": state.model}, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateStore:
    """Saves snapshots off the event loop; bursts of changes collapse into one write of the newest state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: SavedState | None = None
        self._writer: asyncio.Task[None] | None = None

    def load(self) -> SavedState:
        """The saved state (empty when there is none)."""
        return load_state(self.path)

    def save(self, state: SavedState) -> None:
        """Schedule a write of `state`."""
        self._latest = state
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self._latest is not None:
            state, self._latest = self._latest, None
            try:
                await asyncio.to_thread(write_state, self.path, state)
            except OSError as exc:
                log.error("cannot write state file %s: %s", self.path, exc)

    async def flush(self) -> None:
        """Wait for pending writes."""
        if self._writer is not None:
            await self._writer
