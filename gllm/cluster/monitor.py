"""Watch the cluster through the balancer's GET /workers: print readiness progress and worker failures.

It also remembers the model the workers serve, so that a restarted balancer can be told the current model
(which may differ from --load-model after a POST /load_model) instead of swapping the workers back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

SERVING_STATES = ("loading", "ready")


class ClusterMonitor:
    """Polls GET /workers and reports changes; `observe` holds the logic, `run` the loop."""

    def __init__(
        self,
        balancer_url: str,
        names: Mapping[str, str],
        say: Callable[[str], None],
        warn: Callable[[str], None],
        *,
        model: str | None = None,
        interval: float = 1.0,
        timeout: float = 3.0,
        progress: bool = True,
    ) -> None:
        self._url = balancer_url.rstrip("/") + "/workers"
        self._names = dict(names)  # worker address -> name
        self._say = say
        self._warn = warn
        self._interval = interval
        self._timeout = timeout
        self._progress = progress
        self._started = time.monotonic()
        self._states: dict[str, str] = {}
        self._last_summary: str | None = None
        self.model_hint = model
        self.all_ready = False
        self.polls = 0

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Poll forever (cancel the task to stop)."""
        while True:
            workers = await self.poll_once(session)
            if workers is not None:
                self.observe(workers)
            await asyncio.sleep(self._interval)

    async def poll_once(self, session: aiohttp.ClientSession) -> list[dict[str, Any]] | None:
        """The balancer's worker list, or None when it does not answer (restarting, for example)."""
        try:
            async with session.get(self._url, timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                if resp.status != 200:
                    return None
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return None
        self.polls += 1
        return [w for w in data if isinstance(w, dict)] if isinstance(data, list) else None

    def observe(self, workers: list[dict[str, Any]]) -> None:
        """Report what changed since the last poll."""
        ours = {str(w.get("address")): w for w in workers if str(w.get("address")) in self._names}
        for address, worker in ours.items():
            state = str(worker.get("state") or "unknown")
            previous = self._states.get(address)
            self._states[address] = state
            if state == "failed" and previous != "failed":
                error = worker.get("last_error") or "no details"
                self._warn(f"{self._names[address]} ({address}) failed: {error}")
        self._update_model(list(ours.values()))
        summary = self.summary(ours)
        if summary == self._last_summary:
            return
        self._last_summary = summary
        ready = sum(1 for w in ours.values() if w.get("state") == "ready")
        if ready == len(self._names) and not self.all_ready:
            self.all_ready = True
            model = f" {self.model_hint}" if self.model_hint else ""
            elapsed = time.monotonic() - self._started
            self._say(f"cluster ready: all {ready} workers serve{model} ({elapsed:.1f}s after start)")
        elif self._progress or self.all_ready:
            self._say(summary)

    def summary(self, ours: Mapping[str, Mapping[str, Any]]) -> str:
        """One line: how many of our workers are ready, and what the others do."""
        expected = len(self._names)
        states = Counter(str(w.get("state") or "unknown") for w in ours.values())
        ready = states.pop("ready", 0)
        others = [f"{count} {state}" for state, count in sorted(states.items())]
        if expected > len(ours):
            others.append(f"{expected - len(ours)} not registered yet")
        model = f" with {self.model_hint}" if self.model_hint else ""
        if not self.model_hint and not ready and ours and set(states) <= {"idle", "unknown"}:
            return (
                f"workers registered: {len(ours)}/{expected}, no model loaded (POST /load_model to load one)"
            )
        return f"workers ready: {ready}/{expected}{model}" + (f" ({', '.join(others)})" if others else "")

    def _update_model(self, ours: list[Mapping[str, Any]]) -> None:
        serving = Counter(
            str(w["model"]) for w in ours if w.get("model") and str(w.get("state")) in SERVING_STATES
        )
        if serving:
            self.model_hint = serving.most_common(1)[0][0]
        elif ours and all(str(w.get("state")) == "released" for w in ours):
            self.model_hint = None
