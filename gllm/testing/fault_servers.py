"""In-process servers that put a fault in front of a real engine: flapping health, and a recording front.

A `Front` relays every request to its target engine (streams chunk by chunk) and records what arrived, with the
client's `x-request-id` and the time, so a test can tell which requests reached it and when. With `flap`, its
`/health` alternates 200 / 503 on every probe while completions keep working: a worker flapping between
healthy and unhealthy.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gllm.testing.aio_app import start_app
from gllm.testing.loop_thread import LoopThread

_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request that reached a front."""

    at: float  # time.monotonic() on arrival
    request_id: str | None
    path: str


@dataclass
class Front:
    """A relay in front of `target` (an engine's base URL)."""

    target: str
    flap: bool = False
    port: int = 0
    probes: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    open_streams: int = 0
    streams_completed: int = 0
    streams_broken: int = 0

    @property
    def url(self) -> str:
        """The front's address (register this one as the worker)."""
        return f"http://127.0.0.1:{self.port}"

    def completions(self) -> list[Arrival]:
        """The completion requests that arrived."""
        return [a for a in self.arrivals if a.path.endswith("completions")]


@dataclass(frozen=True, slots=True)
class Script:
    """What one streamed answer sends: raw SSE bytes (possibly ending inside an event), then death or [DONE]."""

    events: tuple[bytes, ...]
    die: bool = True


@dataclass
class Scripted:
    """A worker that answers each stream with the next script of a list it may share with other workers.

    Sharing the list makes a scenario independent of routing: the first stream dies wherever it lands, and the
    continuation (on another worker) gets the next script. Non-streaming requests get a small JSON completion;
    `bodies` records every completion request body, so a test can read the continuation request.
    """

    scripts: list[Script]
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The worker's address."""
        return f"http://127.0.0.1:{self.port}"

    async def completion(self, request: web.Request) -> web.StreamResponse:
        """Answer one completion request by the next script."""
        body = await request.read()
        self.bodies.append(body)
        if b'"stream":true' not in body.replace(b" ", b""):
            return web.json_response({"id": "cmpl-s", "choices": [{"index": 0, "text": "ok"}]})
        script = self.scripts.pop(0) if self.scripts else Script((), die=False)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in script.events:
            await response.write(event)
        if script.die:
            await asyncio.sleep(0.05)  # let the bytes leave before the connection drops
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class FrontServers:
    """Hosts fronts on one background loop; `close()` stops them all."""

    def __init__(self) -> None:
        self._loop = LoopThread("gllm-fault-fronts")
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None

    def add(self, target: str, flap: bool = False) -> Front:
        """Start a front relaying to `target` on a free port."""
        front = Front(target.rstrip("/"), flap)
        self._loop.run(self._start(front))
        return front

    async def _start(self, front: Front) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=120, connect=5),
                connector=aiohttp.TCPConnector(limit=0),
            )

        async def health(request: web.Request) -> web.StreamResponse:
            return await self._health(front, request)

        async def relay(request: web.Request) -> web.StreamResponse:
            return await self._relay(front, request)

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_route("*", "/{tail:.*}", relay)
        runner, front.port = await start_app(app)
        self._runners.append(runner)

    def add_scripted(self, scripts: list[Script]) -> Scripted:
        """Start a scripted worker on a free port, answering streams from `scripts` (shared, consumed)."""
        worker = Scripted(scripts)
        self._loop.run(self._start_scripted(worker))
        return worker

    async def _start_scripted(self, worker: Scripted) -> None:
        async def health(request: web.Request) -> web.StreamResponse:
            return web.Response(text="ok")

        async def control(request: web.Request) -> web.StreamResponse:
            await request.read()
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_get("/health", health)
        for prefix in ("", "/v1"):
            app.router.add_post(prefix + "/completions", worker.completion)
            app.router.add_post(prefix + "/chat/completions", worker.completion)
            app.router.add_post(prefix + "/load_model", control)
            app.router.add_post(prefix + "/release_gpus", control)
        runner, worker.port = await start_app(app)
        self._runners.append(runner)

    async def _health(self, front: Front, request: web.Request) -> web.StreamResponse:
        front.probes += 1
        if front.flap:
            healthy = front.probes % 2 == 1  # 200, 503, 200, 503, ...: never two failures in a row
            return web.Response(status=200 if healthy else 503, text="ok" if healthy else "flapping")
        return await self._relay(front, request)

    async def _relay(self, front: Front, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        front.arrivals.append(Arrival(time.monotonic(), request.headers.get("x-request-id"), request.path))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, front.target + request.path_qs, data=await request.read(), headers=headers
        ) as upstream:
            reply_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            if upstream.content_type != "text/event-stream":
                return web.Response(status=upstream.status, body=await upstream.read(), headers=reply_headers)
            response = web.StreamResponse(status=upstream.status, headers=reply_headers)
            front.open_streams += 1
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                front.streams_completed += 1
            except BaseException:  # the balancer hung up (cancelled), or the engine broke off
                front.streams_broken += 1
                raise
            finally:
                front.open_streams -= 1
            return response

    def close(self) -> None:
        """Stop every front and the loop."""
        self._loop.run(self._stop())
        self._loop.close()

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()
