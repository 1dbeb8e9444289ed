"""A scriptable fake GLLM balancer for the client's tests: a real aiohttp server on 127.0.0.1 in a thread.

It serves the balancer contract at the root and under /v1 (health, workers, models, chat and text completions
as JSON or SSE, load_model, release_gpus, add/remove_worker) with echo answers, and can be told to misbehave
for the next requests to a route: answer with a status (and Retry-After), drop the connection, hang, or break
a stream with an error event. Every request is recorded.

    with FakeBalancer() as fake:
        fake.fail_next("/chat/completions", Fault(status=503, retry_after="0"), times=2)
        GLLM(fake.url).get_chat_completion("hi")   # two 503s, then the answer
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

FaultMode = Literal["status", "drop", "hang", "stream_error"]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour: an error status, a dropped connection, a hang, or an error event mid-stream."""

    status: int = 503
    mode: FaultMode = "status"
    message: str = "fake failure"
    retry_after: str | None = None
    text: str | None = None  # a plain-text body instead of the OpenAI-shaped JSON error
    after_chunks: int = 1  # stream_error: chunks sent before the error event


BODY_KEY = web.RequestKey("fake_body", object)  # the decoded request body
FAULT_KEY = web.RequestKey[Fault | None]("fake_fault")  # a stream_error fault for the handler to act on


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str  # without the /v1 prefix
    headers: Mapping[str, str]
    body: Any  # decoded JSON, the text when not JSON, None when empty


@dataclass
class _State:
    model: str
    api_key: str | None
    health_status: int = 200
    health_text: str = "All workers healthy"
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    worker_snapshots: deque[list[dict[str, Any]]] = field(default_factory=deque)
    added_workers: list[str] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)


def _canonical(path: str) -> str:
    return path[3:] if path.startswith("/v1/") else path


def _openai_error(status: int, message: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code or status}}
    return web.json_response(body, status=status)


class FakeBalancer:
    """A fake balancer on a free loopback port; start() / stop(), or use it as a context manager."""

    def __init__(self, model: str = "org/fake-model", api_key: str | None = None) -> None:
        self._lock = threading.Lock()
        self._state = _State(model=model, api_key=api_key)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._release: asyncio.Event | None = None  # set at stop() to free hanging handlers
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:43121."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting (thread-safe, called from tests) -----------------------------------------------------------

    def fail_next(self, path: str, fault: Fault | None = None, times: int = 1) -> None:
        """Make the next `times` requests to `path` (e.g. "/chat/completions") misbehave as `fault`."""
        with self._lock:
            queue = self._state.faults.setdefault(_canonical(path), deque())
            queue.extend([fault or Fault()] * times)

    def set_health(self, status: int, text: str = "") -> None:
        """What GET /health answers from now on."""
        with self._lock:
            self._state.health_status = status
            self._state.health_text = text or ("All workers healthy" if status == 200 else "Worker unhealthy")

    def set_workers(self, *snapshots: Sequence[Mapping[str, Any]]) -> None:
        """Script GET /workers: each call answers the next snapshot; the last one is kept."""
        with self._lock:
            self._state.worker_snapshots = deque([dict(worker) for worker in snap] for snap in snapshots)

    @property
    def model(self) -> str:
        """The cluster model (changed by load_model)."""
        with self._lock:
            return self._state.model

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The requests received so far, all or those to one path."""
        with self._lock:
            recorded = list(self._state.requests)
        return recorded if path is None else [req for req in recorded if req.path == _canonical(path)]

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        """Start serving on a free port; returns when the server accepts connections."""
        ready = threading.Event()
        errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready, errors), name="fake-balancer", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("fake balancer did not start")
        if errors:
            self._thread.join(timeout)
            raise RuntimeError("fake balancer failed to start") from errors[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, free hanging handlers and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(self._shutdown)
            thread.join(timeout)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self._app(), shutdown_timeout=1.0)
        try:
            loop.run_until_complete(self._serve(runner))
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _serve(self, runner: web.AppRunner) -> None:
        self._release = asyncio.Event()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])

    def _shutdown(self) -> None:
        if self._release is not None:
            self._release.set()
        assert self._loop is not None
        self._loop.stop()

    # -- routes -----------------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        routes = [
            ("GET", "/health", self._health),
            ("GET", "/workers", self._workers),
            ("GET", "/models", self._models),
            ("POST", "/chat/completions", self._generate),
            ("POST", "/completions", self._generate),
            ("POST", "/load_model", self._load_model),
            ("POST", "/release_gpus", self._release_gpus),
            ("POST", "/add_worker", self._add_worker),
            ("POST", "/remove_worker", self._remove_worker),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/v1" + path, handler)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        path = _canonical(request.path)
        with self._lock:
            self._state.requests.append(RecordedRequest(request.method, path, dict(request.headers), body))
            key = self._state.api_key
            queue = self._state.faults.get(path)
            fault = queue.popleft() if queue else None
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            return _openai_error(401, "missing or wrong API key", "unauthorized")
        if fault is not None and fault.mode != "stream_error":
            return await self._misbehave(request, fault)
        request[BODY_KEY] = body
        request[FAULT_KEY] = fault
        response: web.StreamResponse = await handler(request)
        return response

    async def _misbehave(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.mode == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500, text="dropped")  # never reaches the closed connection
        if fault.mode == "hang":
            assert self._release is not None
            await self._release.wait()
            return web.Response(status=504, text="hung")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.text is not None:
            return web.Response(status=fault.status, text=fault.text, headers=headers)
        body = {"error": {"message": fault.message, "type": "fake_error", "code": fault.status}}
        return web.json_response(body, status=fault.status, headers=headers)

    async def _health(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.Response(status=self._state.health_status, text=self._state.health_text)

    async def _workers(self, request: web.Request) -> web.Response:
        with self._lock:
            snapshots = self._state.worker_snapshots
            if snapshots:
                workers = snapshots.popleft() if len(snapshots) > 1 else snapshots[0]
            else:
                workers = [
                    {
                        "address": a,
                        "in_flight": 0,
                        "healthy": True,
                        "state": "ready",
                        "model": self._state.model,
                    }
                    for a in self._state.added_workers
                ]
        return web.json_response(workers)

    async def _models(self, request: web.Request) -> web.Response:
        model = self.model
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "gllm"}]
        return web.json_response({"object": "list", "data": data})

    async def _load_model(self, request: web.Request) -> web.Response:
        body = request[BODY_KEY]
        if not isinstance(body, dict) or not body.get("model_path"):
            return web.Response(status=400, text="model_path is required")
        with self._lock:
            self._state.model = str(body["model_path"])
        return web.Response(text="Model load requested")

    async def _release_gpus(self, request: web.Request) -> web.Response:
        return web.Response(text="Gpus released")

    async def _add_worker(self, request: web.Request) -> web.Response:
        body = request[BODY_KEY]
        if not isinstance(body, dict) or not body.get("address"):
            return web.Response(status=400, text="address is required")
        with self._lock:
            if body["address"] not in self._state.added_workers:
                self._state.added_workers.append(str(body["address"]))
            return web.Response(text=self._state.model)

    async def _remove_worker(self, request: web.Request) -> web.Response:
        body = request[BODY_KEY]
        with self._lock:
            if not isinstance(body, dict) or body.get("address") not in self._state.added_workers:
                return web.Response(status=404, text="unknown worker")
            self._state.added_workers.remove(body["address"])
        return web.Response(text="Worker removed")

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY_KEY]
        if not isinstance(body, dict):
            return _openai_error(400, "the body must be a JSON object")
        model = self.model
        if body.get("model") not in (model, model.rstrip("/").rsplit("/", 1)[-1]):
            return _openai_error(404, f"model {body.get('model')!r} not found", "model_not_found")
        chat = _canonical(request.path) == "/chat/completions"
        texts = [_answer(body, chat, index) for index in range(int(body.get("n") or 1))]
        if body.get("stream"):
            return await _stream(request, body, chat, texts, request[FAULT_KEY])
        return web.json_response(_completion(body, chat, texts))


def _answer(body: Mapping[str, Any], chat: bool, index: int) -> str:
    if chat:
        messages = body.get("messages") or [{}]
        said = str(messages[-1].get("content", ""))
    else:
        said = str(body.get("prompt", ""))
    suffix = f" #{index}" if index else ""
    return f"echo: {said}{suffix}"


def _usage(texts: Sequence[str]) -> dict[str, int]:
    completion = sum(len(text.split()) for text in texts)
    return {"prompt_tokens": 3, "completion_tokens": completion, "total_tokens": 3 + completion}


def _envelope(body: Mapping[str, Any], chat: bool, chunk: bool) -> dict[str, Any]:
    kind = ("chat.completion.chunk" if chunk else "chat.completion") if chat else "text_completion"
    return {"id": "fake-1", "object": kind, "created": int(time.time()), "model": body.get("model")}


def _completion(body: Mapping[str, Any], chat: bool, texts: Sequence[str]) -> dict[str, Any]:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if chat
        else {"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
        for i, text in enumerate(texts)
    ]
    return {**_envelope(body, chat, chunk=False), "choices": choices, "usage": _usage(texts)}


def _chunk(body: Mapping[str, Any], chat: bool, index: int, piece: str | None, finish: str | None) -> bytes:
    if chat:
        delta = {"role": "assistant"} if piece is None else {"content": piece}
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
    else:
        choice = {"index": index, "text": piece or "", "finish_reason": finish, "logprobs": None}
    payload = {**_envelope(body, chat, chunk=True), "choices": [choice]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _stream(
    request: web.Request, body: Mapping[str, Any], chat: bool, texts: Sequence[str], fault: Fault | None
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    events: list[bytes] = []
    for index, text in enumerate(texts):
        if chat:
            events.append(_chunk(body, chat, index, None, None))
        words = text.split(" ")
        events.extend(_chunk(body, chat, index, w if i == 0 else " " + w, None) for i, w in enumerate(words))
        events.append(_final(body, chat, index))
    options = body.get("stream_options") or {}
    if options.get("include_usage"):
        usage = {**_envelope(body, chat, chunk=True), "choices": [], "usage": _usage(texts)}
        events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    for count, event in enumerate(events):
        if fault is not None and count == fault.after_chunks:
            error = {"error": {"message": fault.message, "type": "fake_error", "code": fault.status}}
            await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
            return response
        await response.write(event)
    await response.write(b"data: [DONE]\n\n")
    return response


def _final(body: Mapping[str, Any], chat: bool, index: int) -> bytes:
    if chat:
        choice: dict[str, Any] = {"index": index, "delta": {}, "finish_reason": "stop"}
    else:
        choice = {"index": index, "text": "", "finish_reason": "stop", "logprobs": None}
    payload = {**_envelope(body, chat, chunk=True), "choices": [choice]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
