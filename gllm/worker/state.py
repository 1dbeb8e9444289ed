"""The worker's life cycle states and the status snapshot it reports on GET /status."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class WorkerState(enum.StrEnum):
    """Where the worker's engine is in its life.

    idle -> loading -> ready; loading -> failed (crash or load timeout); ready -> failed (crash);
    any -> stopping -> released (release_gpus); a new load_model leaves any state for loading.
    """

    IDLE = "idle"  # no model asked for yet
    LOADING = "loading"  # engine started, its /health is not 200 yet
    READY = "ready"  # engine serving the model
    FAILED = "failed"  # engine crashed or did not become healthy in time
    STOPPING = "stopping"  # engine process tree being stopped
    RELEASED = "released"  # engine stopped on request; GPUs free


@dataclass(frozen=True)
class WorkerStatus:
    """A consistent snapshot of the supervisor, as served by GET /status."""

    state: WorkerState
    model: str | None
    engine: str
    engine_pid: int | None
    engine_port: int
    gpus: list[str]
    uptime_s: float | None  # seconds since the engine process started; None when no engine runs
    load_started_at: float | None  # Unix time of the last load start
    ready_at: float | None  # Unix time the engine became ready (None until then)
    load_duration_s: float | None
    last_error: str | None
    last_log_lines: list[str] = field(default_factory=list)  # engine output, filled when failed

    def to_json(self) -> dict[str, Any]:
        """The JSON object of GET /status."""
        data = asdict(self)
        data["state"] = self.state.value
        return data
