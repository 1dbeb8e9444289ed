"""Keeps each worker's state and model fresh: polls the workers' status route and reads control replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from gllm.balancer.fanout import CallResult, call_all
from gllm.balancer.registry import Registry, Worker, WorkerState
from gllm.http.client import UpstreamPool

log = logging.getLogger("gllm.balancer")

_TRANSITIONAL = (WorkerState.LOADING, WorkerState.STOPPING)


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def apply_status(worker: Worker, payload: dict[str, Any]) -> None:
    """Take `state` and `model` from a worker's status (or load/release reply) JSON."""
    raw_state = payload.get("state")
    if isinstance(raw_state, str):
        try:
            state = WorkerState(raw_state)
        except ValueError:
            state = WorkerState.UNKNOWN
        if state is not worker.state:
            log.info("worker %s: %s -> %s", worker.address, worker.state.value, state.value)
            worker.state = state
    if "model" in payload:
        model = payload["model"]
        worker.model = model if isinstance(model, str) and model else None
    error = payload.get("last_error")
    if worker.state is WorkerState.FAILED and isinstance(error, str):
        worker.last_error = error


def apply_control_reply(worker: Worker, result: CallResult, model: str | None) -> None:
    """Learn from a load_model / release_gpus answer; a legacy text answer means `model` (None: released)."""
    if not result.ok:
        return
    payload = _parse(result.body)
    if payload is not None and "state" in payload:
        apply_status(worker, payload)
    else:
        worker.model = model


class StatusMonitor:
    """Polls every worker's `GET /status` concurrently; faster while any worker is changing state."""

    def __init__(
        self, registry: Registry, pool: UpstreamPool, interval: float, fast_interval: float, timeout: float
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._interval = interval
        self._fast_interval = fast_interval
        self._timeout = timeout
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Poll now (a worker was added or asked to change state)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            self._wake.clear()
            await self.refresh()
            busy = any(w.state in _TRANSITIONAL or w.status_route is None for w in self._registry.all())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._fast_interval if busy else self._interval):
                    await self._wake.wait()

    async def refresh(self) -> None:
        """Poll every worker once."""
        workers = [w for w in self._registry.all() if w.status_route is not False]
        if not workers:
            return
        for result in await call_all(self._pool, workers, "GET", "/status", b"", self._timeout):
            worker = result.worker
            if result.status == 404:
                worker.status_route = False  # a legacy worker: route to it as the old balancer did
                continue
            payload = _parse(result.body) if result.ok else None
            if payload is not None:
                worker.status_route = True
                apply_status(worker, payload)
