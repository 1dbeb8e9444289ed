"""Worker records from GET /workers, and when a model counts as loaded on every worker, without I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gllm.client.errors import GLLMError

READY = "ready"
FAILED = "failed"
UNKNOWN = "unknown"  # the balancer has not heard the worker's state yet


@dataclass(frozen=True)
class WorkerStatus:
    """One worker as the balancer sees it; `raw` keeps every field the balancer sent."""

    address: str
    in_flight: int = 0
    healthy: bool | None = None
    state: str | None = None  # idle | loading | ready | failed | released | unknown; None: older balancer
    model: str | None = None
    error: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def is_ready_with(self, model: str) -> bool:
        """Whether this worker serves `model` now."""
        if self.state in (None, UNKNOWN):  # no state reported (older balancer or worker): go by health
            return self.healthy is True and (self.model is None or model_matches(self.model, model))
        return self.state == READY and self.model is not None and model_matches(self.model, model)


def parse_workers(payload: Any) -> list[WorkerStatus]:
    """Parse the JSON list of GET /workers."""
    if not isinstance(payload, list):
        raise GLLMError(f"GET /workers: expected a JSON list, got {str(payload)[:200]}")
    return [_parse_worker(entry) for entry in payload]


def _parse_worker(entry: Any) -> WorkerStatus:
    if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
        raise GLLMError(f"GET /workers: a worker entry without an address: {str(entry)[:200]}")
    healthy = entry.get("healthy")
    error = entry.get("error", entry.get("last_error"))
    return WorkerStatus(
        address=entry["address"],
        in_flight=int(entry.get("in_flight") or 0),
        healthy=healthy if isinstance(healthy, bool) else None,
        state=_optional_str(entry.get("state")),
        model=_optional_str(entry.get("model")),
        error=_optional_str(error),
        raw=entry,
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _last_component(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def model_matches(served: str, wanted: str) -> bool:
    """Whether a worker serving `served` serves `wanted`: same name, or one is the other's last path component."""
    if served == wanted:
        return True
    return served == _last_component(wanted) or _last_component(served) == wanted


@dataclass(frozen=True)
class Readiness:
    """How far the loading of one model has got across the cluster."""

    model: str
    total: int
    ready: int
    states: Mapping[str, int]
    failures: Mapping[str, str]

    @property
    def done(self) -> bool:
        """Every worker (at least one) serves the model."""
        return self.total > 0 and self.ready == self.total

    def summary(self) -> str:
        """A short line such as '2/4 ready (loading: 2)'."""
        others = ", ".join(
            f"{state}: {count}" for state, count in sorted(self.states.items()) if state != READY
        )
        text = f"{self.ready}/{self.total} ready"
        return f"{text} ({others})" if others else text


def _state_label(worker: WorkerStatus, model: str) -> str:
    if worker.is_ready_with(model):
        return READY
    if worker.state == READY:
        return "other model"
    return worker.state or "unhealthy"


def readiness(workers: Sequence[WorkerStatus], model: str) -> Readiness:
    """Count the workers ready with `model`, and collect the failed ones with their errors."""
    ready = sum(1 for worker in workers if worker.is_ready_with(model))
    states = Counter(_state_label(worker, model) for worker in workers)
    failures = {worker.address: worker.error or "" for worker in workers if worker.state == FAILED}
    return Readiness(model, len(workers), ready, dict(states), failures)
