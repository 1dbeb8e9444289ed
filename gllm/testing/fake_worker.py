"""Fake GLLM workers for the balancer's tests: real aiohttp servers on 127.0.0.1 with scripted behaviour.

A worker here is independent of the balancer's own HTTP code, so a bug on one side cannot hide one on the other.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gllm.testing.aio_app import start_app
from gllm.testing.loop_thread import LoopThread


@dataclass
class WorkerBehaviour:
    """How a fake worker answers; change fields at any time from the test thread."""

    health_status: int = 200
    health_delay: float = 0.0
    completion_status: int = 200
    completion_delay: float = 0.0
    stream_chunks: int = 3
    chunk_delay: float = 0.0
    die_after_chunks: int | None = None
    load_model_status: int = 200
    release_status: int = 200
    control_delay: float = 0.0
    hold: bool = False
    state: str = "ready"
    model: str | None = None


@dataclass
class RecordedRequest:
    """One request a fake worker received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class FakeWorker:
    """One fake worker; `requests` records everything it received."""

    name: str
    behaviour: WorkerBehaviour
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    held: int = 0
    completed_streams: int = 0
    broken_streams: int = 0
    _release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """Base URL (the worker's registered address)."""
        return f"http://127.0.0.1:{self.port}"

    def completions(self) -> list[RecordedRequest]:
        """The completion requests received."""
        return [r for r in self.requests if r.path.endswith("completions")]

    # -- handlers ---------------------------------------------------------------------------------------------
    async def _record(self, request: web.Request) -> RecordedRequest:
        record = RecordedRequest(request.method, request.path, dict(request.headers), await request.read())
        self.requests.append(record)
        return record

    async def health(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(self.behaviour.health_delay)
        return web.Response(
            status=self.behaviour.health_status, text="ok" if self.behaviour.health_status == 200 else "down"
        )

    async def status(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"state": self.behaviour.state, "model": self.behaviour.model})

    async def control(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        await asyncio.sleep(self.behaviour.control_delay)
        if request.path.endswith("load_model"):
            status = self.behaviour.load_model_status
            if status == 200:
                self.behaviour.model = record.json().get("model_path")
        else:
            status = self.behaviour.release_status
            if status == 200:
                self.behaviour.model, self.behaviour.state = None, "released"
        return web.json_response({"status": "ok" if status == 200 else "failed"}, status=status)

    async def completion(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        b = self.behaviour
        if b.hold:
            self.held += 1
            try:
                assert self._release is not None
                await self._release.wait()
            finally:
                self.held -= 1
        await asyncio.sleep(b.completion_delay)
        try:
            payload = record.json()
        except ValueError:
            payload = None
        if b.completion_status != 200:
            error = {
                "error": {"message": f"{self.name} says no", "type": "test", "code": b.completion_status}
            }
            return web.json_response(error, status=b.completion_status)
        if isinstance(payload, dict) and payload.get("stream"):
            return await self._stream(request)
        body = {
            "id": f"cmpl-{self.name}",
            "object": "chat.completion",
            "created": int(time.time()),
            "worker": self.name,
            "echo": payload,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"hello from {self.name}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        }
        return web.json_response(body, headers={"X-Worker": self.name})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Worker": self.name})
        await response.prepare(request)
        try:
            for i in range(b.stream_chunks):
                if b.die_after_chunks is not None and i >= b.die_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()  # the worker "dies" mid-stream
                    self.broken_streams += 1
                    return response
                chunk = {
                    "worker": self.name,
                    "index": i,
                    "choices": [{"index": 0, "delta": {"content": f"t{i} "}}],
                }
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                await asyncio.sleep(b.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.broken_streams += 1  # the balancer closed our connection: its client went away
            raise
        self.completed_streams += 1
        return response

    def app(self) -> web.Application:
        """The aiohttp application of this worker (every route also under /v1)."""
        app = web.Application()
        for prefix in ("", "/v1"):
            app.router.add_get(prefix + "/health", self.health)
            app.router.add_get(prefix + "/status", self.status)
            app.router.add_post(prefix + "/load_model", self.control)
            app.router.add_post(prefix + "/release_gpus", self.control)
            app.router.add_post(prefix + "/chat/completions", self.completion)
            app.router.add_post(prefix + "/completions", self.completion)
        return app


class _Silent(asyncio.Protocol):
    """Accepts a connection and never answers: a hung worker."""

    def data_received(self, data: bytes) -> None:
        pass


class FakeWorkerFarm:
    """Hosts any number of fake workers (and hung ones) on one background loop; `close()` stops them all."""

    def __init__(self) -> None:
        self._loop = LoopThread("gllm-fake-workers")
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.AbstractServer] = []
        self.workers: list[FakeWorker] = []

    def add(self, behaviour: WorkerBehaviour | None = None, name: str | None = None) -> FakeWorker:
        """Start one fake worker on a free port."""
        worker = FakeWorker(name or f"w{len(self.workers)}", behaviour or WorkerBehaviour())
        self._loop.run(self._start(worker))
        self.workers.append(worker)
        return worker

    async def _start(self, worker: FakeWorker) -> None:
        worker._release = asyncio.Event()
        runner, worker.port = await start_app(worker.app())
        self._runners.append(runner)

    def add_hung(self) -> str:
        """Start a server that accepts connections and never answers; return its URL."""
        return self._loop.run(self._start_hung())

    async def _start_hung(self) -> str:
        server = await asyncio.get_running_loop().create_server(_Silent, "127.0.0.1", 0)
        self._servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    def release(self, worker: FakeWorker) -> None:
        """Let every held request of `worker` (and later ones) go on."""
        assert worker._release is not None
        worker.behaviour.hold = False
        self._loop.call(worker._release.set)

    def stop(self, worker: FakeWorker) -> None:
        """Take one worker down: requests it is serving get a second to finish; new connections are refused."""
        runner = self._runners[self.workers.index(worker)]  # started in the same order as listed
        self._loop.run(runner.cleanup())

    def close(self) -> None:
        """Stop every worker and the loop."""
        for worker in self.workers:
            if worker._release is not None:
                self._loop.call(worker._release.set)
        self._loop.run(self._stop_all())
        self._loop.close()

    async def _stop_all(self) -> None:
        for server in self._servers:
            server.close()
        for runner in self._runners:
            await runner.cleanup()
