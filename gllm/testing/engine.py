"""A tiny fake engine for the worker's tests: `python -m gllm.testing.engine --port P [misbehaviours]`.

It serves just enough of vLLM's surface (GET /health, GET /v1/models, POST /v1/chat/completions and
/v1/completions, JSON or SSE) and can misbehave on purpose: crash after a while, never become healthy,
ignore SIGTERM, start helper processes (in its group or in a new session). GET /fake/stats counts completed
and abandoned streams so a test can see that a client hang-up reached the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import psutil
from aiohttp import web

from gllm.testing.net import free_port
from gllm.worker.engines import PRESETS, EngineSpec
from gllm.worker.state import WorkerState
from gllm.worker.supervisor import EngineSupervisor, SupervisorConfig

_HELPER_CODE = (
    "import os, signal, sys, time\n"
    "if sys.argv[1] == '1': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "if sys.argv[2] == '1': os.setsid()\n"
    "print('helper up', os.getpid(), flush=True)\n"
    "while True: time.sleep(1)\n"
)


def fake_engine_template(*flags: str) -> str:
    """An --engine-cmd template that runs this fake engine with `flags`."""
    words = [sys.executable, "-m", "gllm.testing.engine", "--port", "{engine_port}", "--model", "{model}"]
    return " ".join(shlex.quote(word) if "{" not in word else word for word in [*words, *flags])


def fake_engine_spec(*flags: str, port: int | None = None) -> EngineSpec:
    """An EngineSpec that starts this fake engine with `flags` on a free (or the given) port."""
    return EngineSpec(preset=PRESETS["vllm"], port=port or free_port(), template=fake_engine_template(*flags))


@asynccontextmanager
async def supervised(spec: EngineSpec, **config: Any) -> AsyncIterator[EngineSupervisor]:
    """A supervisor with its own HTTP client; its engine is shut down on exit, even when the test fails."""
    settings = dataclasses.replace(
        SupervisorConfig(poll_interval=0.05, stop_grace=5.0, load_timeout=60.0), **config
    )
    async with aiohttp.ClientSession() as session:
        supervisor = EngineSupervisor(spec, session, settings)
        try:
            yield supervisor
        finally:
            await supervisor.shutdown()


async def wait_state(
    supervisor: EngineSupervisor, states: WorkerState | Iterable[WorkerState], timeout: float = 30.0
) -> WorkerState:
    """Wait until the supervisor is in one of `states`; TimeoutError naming the state it is stuck in."""
    wanted = {states} if isinstance(states, WorkerState) else set(states)
    deadline = time.monotonic() + timeout
    while supervisor.state not in wanted:
        if time.monotonic() >= deadline:
            status = supervisor.status()
            raise TimeoutError(f"state {supervisor.state} not in {wanted} after {timeout}s: {status}")
        await asyncio.sleep(0.02)
    return supervisor.state


def process_gone(pid: int) -> bool:
    """Whether `pid` no longer runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def helper_pid(lines: Iterable[str]) -> int:
    """The helper's pid, read from the fake engine's output."""
    for line in lines:
        if line.startswith("helper pid "):
            return int(line.split()[-1])
    raise LookupError("the fake engine printed no helper pid")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gllm.testing.engine", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--ready-after", type=float, default=0.0, help="/health is 503 for this long")
    parser.add_argument("--never-healthy", action="store_true")
    parser.add_argument("--crash-after", type=float, default=None, help="exit with code 3 after this long")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--helper", action="store_true", help="start a helper process (same process group)")
    parser.add_argument("--helper-new-session", action="store_true", help="the helper leaves the group")
    parser.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between streamed chunks")
    parser.add_argument("--chunks", type=int, default=5)
    return parser.parse_args(argv)


class FakeEngine:
    """The fake engine's routes and counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.stats = {"requests": 0, "completed_streams": 0, "abandoned_streams": 0}

    async def health(self, request: web.Request) -> web.Response:
        """503 while "loading", 200 after."""
        loading = time.monotonic() - self.started < self.args.ready_after
        if self.args.never_healthy or loading:
            return web.Response(status=503, text="loading")
        return web.Response(text="")

    async def models(self, request: web.Request) -> web.Response:
        """One model: ours."""
        data = [{"id": self.args.model, "object": "model", "created": 0, "owned_by": "fake"}]
        return web.json_response({"object": "list", "data": data})

    async def fake_stats(self, request: web.Request) -> web.Response:
        """Counters for tests."""
        return web.json_response(self.stats)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """Echo-ish completion; SSE when "stream" is true; 400 on a body that is not a JSON object."""
        self.stats["requests"] += 1
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            error = {"message": "body must be a JSON object", "type": "BadRequestError", "code": 400}
            return web.json_response({"error": error}, status=400)
        chat = request.path.endswith("chat/completions")
        echo = {"headers": dict(request.headers), "body": body}
        if not body.get("stream"):
            text = " ".join(f"tok{i}" for i in range(self.args.chunks))
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "stop"}
            )
            reply: dict[str, Any] = {
                "id": "fake-1",
                "object": "chat.completion" if chat else "text_completion",
            }
            reply.update({"model": self.args.model, "choices": [choice], "gllm_fake": echo})
            return web.json_response(reply, headers={"X-Fake-Engine": "1"})
        return await self._stream(request, chat)

    async def _stream(self, request: web.Request, chat: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Fake-Engine": "1"})
        await response.prepare(request)
        try:
            for i in range(self.args.chunks):
                delta = {"delta": {"content": f"tok{i} "}} if chat else {"text": f"tok{i} "}
                chunk = {"id": "fake-1", "model": self.args.model, "choices": [{"index": 0, **delta}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(self.args.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.stats["abandoned_streams"] += 1
            raise
        self.stats["completed_streams"] += 1
        return response


def _start_helper(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    flags = ["1" if args.ignore_sigterm else "0", "1" if args.helper_new_session else "0"]
    return subprocess.Popen([sys.executable, "-c", _HELPER_CODE, *flags])


async def _serve(args: argparse.Namespace) -> int:
    engine = FakeEngine(args)
    app = web.Application()
    app.router.add_get("/health", engine.health)
    app.router.add_get("/v1/models", engine.models)
    app.router.add_get("/fake/stats", engine.fake_stats)
    app.router.add_post("/v1/chat/completions", engine.generate)
    app.router.add_post("/v1/completions", engine.generate)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print(f"fake engine serving {args.model} on port {args.port}, pid {os.getpid()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if not args.ignore_sigterm:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        if args.crash_after is not None:
            await asyncio.wait_for(stop.wait(), args.crash_after)
        else:
            await stop.wait()
    except TimeoutError:
        print("fatal: simulated crash", flush=True)
        return 3
    finally:
        await runner.cleanup()
    print("fake engine stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the fake engine until SIGTERM (or its planned crash)."""
    args = _parse(argv)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"fake engine starting, pid {os.getpid()}", flush=True)
    helper = _start_helper(args) if args.helper or args.helper_new_session else None
    if helper is not None:
        print(f"helper pid {helper.pid}", flush=True)
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
