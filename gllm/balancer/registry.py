"""Worker records and the registry that holds them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from gllm.balancer.breaker import BreakerSettings, CircuitBreaker
from gllm.http.client import Origin


class WorkerState(StrEnum):
    """What a worker's engine is doing, as the worker reports it."""

    UNKNOWN = "unknown"
    IDLE = "idle"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"
    RELEASED = "released"


def model_alias(model: str) -> str:
    """The short name of a model path: its last path component (`/ckpt/qwen-7b/` -> `qwen-7b`)."""
    return model.rstrip("/").rsplit("/", 1)[-1]


def model_matches(served: str, requested: str) -> bool:
    """True when a worker serving `served` can answer a request for `requested` (full path or alias)."""
    return requested == served or requested == model_alias(served)


def normalize_address(raw: object) -> str:
    """Validate a worker address and return it as `scheme://host[:port]`; ValueError says what is wrong."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("'address' must be a non-empty string such as http://10.0.0.5:8000")
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid worker address {text!r}: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"invalid worker address {text!r}: only http:// and https:// URLs are accepted")
    if not parts.hostname:
        raise ValueError(f"invalid worker address {text!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"invalid worker address {text!r}: credentials in the URL are not allowed")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid worker address {text!r}: give only scheme, host and port")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


@dataclass(eq=False, slots=True)
class Worker:
    """One registered worker; `in_flight` counts the requests open on it through this balancer."""

    address: str
    origin: Origin
    in_flight: int = 0
    healthy: bool | None = None
    state: WorkerState = WorkerState.UNKNOWN
    model: str | None = None
    last_error: str | None = None
    removed: bool = False
    status_route: bool | None = None  # whether the worker serves GET /status (None: not asked yet)
    added_at: float = field(default_factory=time.time)
    requests_total: int = 0
    health_failures: int = 0  # consecutive failed probes
    health_successes: int = 0  # consecutive passed probes
    ejected: bool = False  # out of rotation after repeated failed probes
    ejections: int = 0
    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker(BreakerSettings()))

    def serves(self, requested: str | None) -> bool:
        """True when this worker may answer a request for `requested` (None: any model).

        A worker that reports no model (a legacy worker without a status route, or one whose engine name is
        unknown) is trusted with any model, as the old balancer did.
        """
        return requested is None or self.model is None or model_matches(self.model, requested)

    @property
    def state_allows(self) -> bool:
        """True when the worker's reported state lets it serve (ready, or unknown for legacy workers)."""
        return self.state is WorkerState.READY or self.state is WorkerState.UNKNOWN

    @property
    def routable(self) -> bool:
        """True when the worker may take a new request: its state allows, not ejected, breaker allowing."""
        return self.state_allows and not self.ejected and self.breaker.allows()

    def to_json(self) -> dict[str, Any]:
        """The worker as `GET /workers` shows it."""
        return {
            "address": self.address,
            "in_flight": self.in_flight,
            "healthy": self.healthy,
            "state": self.state.value,
            "model": self.model,
            "last_error": self.last_error,
            "requests_total": self.requests_total,
            "ejected": self.ejected,
            "ejections": self.ejections,
            "health_failures": self.health_failures,
            "breaker": self.breaker.state.value,
            "consecutive_failures": self.breaker.failures,
        }


class Registry:
    """The registered workers, by normalized address, in registration order."""

    def __init__(self, breaker: BreakerSettings | None = None) -> None:
        self._workers: dict[str, Worker] = {}
        self._breaker = breaker or BreakerSettings()

    def add(self, address: str) -> tuple[Worker, bool]:
        """Register a (normalized) address; return the worker and whether it is new."""
        worker = self._workers.get(address)
        if worker is not None:
            return worker, False
        worker = Worker(address=address, origin=Origin(address), breaker=CircuitBreaker(self._breaker))
        self._workers[address] = worker
        return worker, True

    def remove(self, address: str) -> Worker | None:
        """Unregister an address; in-flight requests keep their reference and finish normally."""
        worker = self._workers.pop(address, None)
        if worker is not None:
            worker.removed = True
        return worker

    def get(self, address: str) -> Worker | None:
        """Return the worker at an address, if registered."""
        return self._workers.get(address)

    def all(self) -> list[Worker]:
        """Every registered worker, in registration order."""
        return list(self._workers.values())

    def __len__(self) -> int:
        return len(self._workers)
