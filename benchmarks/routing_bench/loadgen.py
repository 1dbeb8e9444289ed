"""The load generator: streamed chat requests, closed loop, per-user sessions or Poisson arrivals.

Measures, per request, time to the first content token and to the end, and reads the usage chunk.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from routing_bench.workloads import MODEL, Request, Session, Workload

REQUEST_TIMEOUT = 120.0


@dataclass
class Outcome:
    """One request's result."""

    ok: bool
    ttft: float = 0.0
    e2e: float = 0.0
    completion_tokens: int = 0
    text: str = ""
    error: str = ""


@dataclass
class RunResult:
    """A whole run: every outcome and the wall time from first send to last answer."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0
    capped: bool = False

    def summary(self) -> dict[str, Any]:
        """Counts, throughput and latency percentiles."""
        good = [o for o in self.outcomes if o.ok]
        ttft = sorted(o.ttft for o in good)
        e2e = sorted(o.e2e for o in good)
        wall = self.wall or 1e-9
        errors: dict[str, int] = {}
        for o in self.outcomes:
            if not o.ok:
                errors[o.error[:60]] = errors.get(o.error[:60], 0) + 1
        return {
            "ok": len(good),
            "capped": self.capped,
            "errors": len(self.outcomes) - len(good),
            "error_kinds": errors,
            "wall_s": round(self.wall, 3),
            "req_s": len(good) / wall,
            "out_tok_s": sum(o.completion_tokens for o in good) / wall,
            "ttft_p50": _pct(ttft, 50),
            "ttft_p99": _pct(ttft, 99),
            "e2e_p50": _pct(e2e, 50),
            "e2e_p99": _pct(e2e, 99),
            "ttft_mean": statistics.fmean(ttft) if ttft else float("nan"),
        }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def send(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> Outcome:
    """POST one streamed chat request and time it."""
    start = time.perf_counter()
    ttft = 0.0
    pieces: list[str] = []
    tokens = 0
    try:
        async with http.post(
            url, data=orjson.dumps(body), headers={"content-type": "application/json", **headers}
        ) as resp:
            if resp.status != 200:
                return Outcome(False, error=f"HTTP {resp.status}: {(await resp.text())[:80]}")
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                event = orjson.loads(data)
                for choice in event.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content") or choice.get("text")
                    if content:
                        if not ttft:
                            ttft = time.perf_counter() - start
                        pieces.append(content)
                usage = event.get("usage")
                if usage:
                    tokens = int(usage.get("completion_tokens") or 0)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    end = time.perf_counter() - start
    return Outcome(True, ttft or end, end, tokens, "".join(pieces))


async def _closed(
    http: aiohttp.ClientSession, url: str, requests: list[Request], concurrency: int, stop_at: float
) -> list[Outcome]:
    queue = list(reversed(requests))
    outcomes: list[Outcome] = []

    async def worker() -> None:
        while queue and time.perf_counter() < stop_at:
            req = queue.pop()
            outcomes.append(await send(http, url, req.body(), req.headers))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def _sessions(
    http: aiohttp.ClientSession, url: str, sessions: list[Session], stop_at: float
) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def converse(session: Session) -> None:
        messages: list[dict[str, str]] = [{"role": "system", "content": session.system}]
        headers = {"X-Session-ID": session.key}
        for user_text, max_tokens in zip(session.user_turns, session.max_tokens, strict=True):
            if time.perf_counter() >= stop_at:
                return
            messages.append({"role": "user", "content": user_text})
            body = Request(list(messages), max_tokens).body()
            outcome = await send(http, url, body, headers)
            outcomes.append(outcome)
            messages.append({"role": "assistant", "content": outcome.text if outcome.ok else "(no answer)"})

    await asyncio.gather(*(converse(s) for s in sessions))
    return outcomes


async def _poisson(
    http: aiohttp.ClientSession, url: str, requests: list[Request], rate: float, seed: int, stop_at: float
) -> list[Outcome]:
    rng = random.Random(seed)
    tasks: list[asyncio.Task[Outcome]] = []
    due = time.perf_counter()
    for req in requests:
        if time.perf_counter() >= stop_at:
            break
        due += rng.expovariate(rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(http, url, req.body(), req.headers)))
    return list(await asyncio.gather(*tasks))


async def run_workload(base_url: str, workload: Workload, max_seconds: float, seed: int = 0) -> RunResult:
    """Run a workload against `base_url`; no request is started after `max_seconds` (a capped run)."""
    url = base_url + "/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        start = time.perf_counter()
        stop_at = start + max_seconds
        if workload.mode == "closed":
            outcomes = await _closed(http, url, workload.requests, workload.concurrency, stop_at)
        elif workload.mode == "sessions":
            outcomes = await _sessions(http, url, workload.sessions, stop_at)
        else:
            outcomes = await _poisson(http, url, workload.requests, workload.rate, seed, stop_at)
        return RunResult(outcomes, time.perf_counter() - start, len(outcomes) < workload.count)


async def probe(base_url: str, headers: dict[str, str] | None = None) -> bool:
    """One tiny request: True when it succeeded."""
    body = Request([{"role": "user", "content": "ready?"}], 2).body()
    body["model"] = MODEL
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        return (await send(http, base_url + "/v1/chat/completions", body, headers or {})).ok
