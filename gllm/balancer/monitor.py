"""Keeps each worker's state and model fresh: polls the workers' status route and reads control replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from gllm.balancer.fanout import CallResult, call_all
from gllm.balancer.registry import Registry, Worker, WorkerState
from gllm.http.pool import UpstreamPool

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
            if state is WorkerState.READY:
                worker.ejected = False  # a freshly ready engine starts with a clean slate
                worker.health_failures = 0
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
        """Poll every worker once: `/status` for GLLM workers, the model list for plain engines."""
        workers = self._registry.all()
        with_status = [w for w in workers if w.status_route is not False]
        status_results = await call_all(self._pool, with_status, "GET", "/status", b"", self._timeout)
        for result in status_results:
            worker = result.worker
            if result.status == 404:
                worker.status_route = False  # a legacy worker or a plain engine: ask for its models next time
                continue
            payload = _parse(result.body) if result.ok else None
            if payload is not None:
                worker.status_route = True
                apply_status(worker, payload)
        plain = [w for w in workers if w.status_route is False]
        for result in await call_all(self._pool, plain, "GET", "/v1/models", b"", self._timeout):
            served = _first_model(_parse(result.body)) if result.ok else None
            if served is not None:
                result.worker.model = served


def _first_model(payload: dict[str, Any] | None) -> str | None:
    """The first model id of an OpenAI model list."""
    data = payload.get("data") if payload is not None else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        model_id = data[0].get("id")
        return model_id if isinstance(model_id, str) and model_id else None
    return None
