"""Scrape every worker's engine metrics (Prometheus text) on an interval into an EngineLoadTable.

Reads vLLM's names (vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc or the older
vllm:gpu_cache_usage_perc), SGLang's (sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage) and
llama.cpp's (llamacpp:requests_processing, llamacpp:requests_deferred, llamacpp:kv_cache_usage_ratio). A GLLM
worker relays its engine's page at GET /metrics; a plain engine serves its own there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from gllm.balancer.engine_load import EngineFigures, EngineLoadTable
from gllm.balancer.registry import Worker
from gllm.http.client import UpstreamError
from gllm.http.pool import UpstreamPool

log = logging.getLogger("gllm.balancer")

DEFAULT_PATHS = ("/metrics", "/engine/metrics")

# metric name -> which figure it gives
_RUNNING = {"vllm:num_requests_running", "sglang:num_running_reqs", "llamacpp:requests_processing"}
_WAITING = {"vllm:num_requests_waiting", "sglang:num_queue_reqs", "llamacpp:requests_deferred"}
_KV = {
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
    "llamacpp:kv_cache_usage_ratio",
}
_PREFIXES = ("vllm:", "sglang:", "llamacpp:")


def _sample(line: str) -> tuple[str, float] | None:
    """Name and value of one exposition line (`name{labels} value [timestamp]`), or None."""
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        rest = line[line.rfind("}") + 1 :].split()
    else:
        parts = line.split()
        name, rest = (parts[0], parts[1:]) if parts else ("", [])
    if not rest:
        return None
    try:
        return name, float(rest[0])
    except ValueError:
        return None


def parse_engine_figures(text: str) -> EngineFigures | None:
    """Running, waiting and KV-cache use from a metrics page; None when it has no engine load figures.

    Counts are summed over label sets (several models or data-parallel ranks); KV-cache use is the highest.
    """
    running = waiting = 0.0
    kv: float | None = None
    found = False
    for raw in text.splitlines():
        if not raw.startswith(_PREFIXES):
            continue
        sample = _sample(raw.strip())
        if sample is None:
            continue
        name, value = sample
        if value != value:  # NaN
            continue
        if name in _RUNNING:
            running += value
            found = True
        elif name in _WAITING:
            waiting += value
            found = True
        elif name in _KV:
            kv = value if kv is None else max(kv, value)
    if not found:
        return None
    return EngineFigures(running, waiting, kv)


class EngineMetricsScraper:
    """Fetches every worker's metrics concurrently, once per interval, each fetch with a timeout.

    `workers` returns the current workers (e.g. `registry.all`). A worker that answers 404 on one path is asked
    on the next of `paths` from then on; failures only leave its figures to go stale.
    """

    def __init__(
        self,
        pool: UpstreamPool,
        workers: Callable[[], Sequence[Worker]],
        table: EngineLoadTable,
        interval: float = 1.0,
        timeout: float = 1.0,
        paths: Sequence[str] = DEFAULT_PATHS,
    ) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        if not paths:
            raise ValueError("at least one metrics path is needed")
        self._pool = pool
        self._workers = workers
        self.table = table
        self.interval = interval
        self.timeout = timeout
        self._paths = tuple(paths)
        self._path_index: dict[str, int] = {}  # address -> index in paths that answers (or the next to try)
        self.scrapes = 0
        self.failures = 0

    async def run(self) -> None:
        """Scrape until cancelled."""
        while True:
            await self.scrape_all()
            await asyncio.sleep(self.interval)

    async def scrape_all(self) -> None:
        """Scrape every current worker once, concurrently; forget workers that are gone."""
        workers = [w for w in self._workers() if not w.removed]
        addresses = {w.address for w in workers}
        self.table.retain(addresses)
        for address in [a for a in self._path_index if a not in addresses]:
            del self._path_index[address]
        if workers:
            await asyncio.gather(*(self.scrape(w) for w in workers))

    async def scrape(self, worker: Worker) -> bool:
        """Scrape one worker; True when fresh figures were recorded."""
        start = self._path_index.get(worker.address, 0)
        for index in range(start, len(self._paths)):
            path = self._paths[index]
            try:
                async with asyncio.timeout(self.timeout):
                    head, body = await self._pool.request(worker.origin, "GET", path, timeout=self.timeout)
            except (UpstreamError, TimeoutError, OSError) as exc:
                self.failures += 1
                log.debug("metrics of %s: %s", worker.address, exc)
                return False
            if head.status == 404:
                # Try the next path now and from then on; when none is left, start over next time.
                self._path_index[worker.address] = (index + 1) % len(self._paths)
                if index + 1 < len(self._paths):
                    continue
            if head.status != 200:
                self.failures += 1
                return False
            figures = parse_engine_figures(body.decode("utf-8", "replace"))
            if figures is None:
                self.failures += 1
                return False
            self._path_index[worker.address] = index
            self.table.update(worker.address, figures, worker.in_flight)
            self.scrapes += 1
            return True
        self.failures += 1
        return False
