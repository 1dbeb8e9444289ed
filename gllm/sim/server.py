"""The HTTP face of a simulated engine: vLLM's OpenAI routes on aiohttp, one site per engine."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gllm import __version__
from gllm.sim.config import SimConfig
from gllm.sim.engine import EngineState, SimEngine, Submission
from gllm.sim.openai_api import ApiError, GenerationRequest, parse_chat, parse_completion
from gllm.sim.responses import DONE, Choice, Envelope, body, chunk, sse, usage, usage_chunk

ENGINE_KEY = web.AppKey("engine", SimEngine)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: object, status: int = 200) -> web.Response:
    """A JSON response serialized with orjson."""
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


@web.middleware
async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body(), exc.status)


async def _read_json(request: web.Request) -> object:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from None


def _engine(request: web.Request) -> SimEngine:
    return request.app[ENGINE_KEY]


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    engine = _engine(request)
    return await _generate(request, engine, parse_chat(await _read_json(request), engine.config), "chatcmpl")


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions."""
    engine = _engine(request)
    return await _generate(
        request, engine, parse_completion(await _read_json(request), engine.config), "cmpl"
    )


async def _generate(
    request: web.Request, engine: SimEngine, generation: GenerationRequest, id_prefix: str
) -> web.StreamResponse:
    submission = engine.submit(generation)
    envelope = Envelope(
        f"{id_prefix}-{secrets.token_hex(16)}", int(time.time()), generation.model, generation.chat
    )
    try:
        if generation.stream:
            return await _stream(request, submission, envelope)
        return await _collect(submission, envelope)
    finally:
        submission.cancel()  # no-op for finished sequences; frees the rest when the client went away


async def _collect(submission: Submission, envelope: Envelope) -> web.Response:
    generation = submission.request
    choices = [Choice(seq.index) for seq in submission.sequences]
    async for batch in submission.batches():
        for event in batch:
            if event.error is not None:
                raise ApiError(503, event.error)
            choice = choices[event.index]
            choice.text += event.text
            if event.finish_reason is not None:
                choice.finish_reason, choice.stop_reason = event.finish_reason, event.stop_reason
    if generation.echo:
        n = generation.sampling.n
        for choice in choices:
            choice.text = generation.prompts[choice.index // n].text + choice.text
    used = usage(submission.prompt_tokens, submission.completion_tokens, submission.cached_tokens)
    return json_response(body(envelope, choices, used))


async def _stream(request: web.Request, submission: Submission, envelope: Envelope) -> web.StreamResponse:
    generation = submission.request
    with_usage = generation.include_usage
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        opening: list[bytes] = []
        for seq in submission.sequences:
            if envelope.chat:
                opening.append(chunk(envelope, seq.index, "", None, None, with_usage, role=True))
            elif generation.echo:
                prompt = generation.prompts[seq.index // generation.sampling.n].text
                opening.append(chunk(envelope, seq.index, prompt, None, None, with_usage))
        if opening:
            await response.write(b"".join(opening))
        async for batch in submission.batches():
            out: list[bytes] = []
            for event in batch:
                if event.error is not None:
                    out.append(sse(ApiError(503, event.error).body()))
                    break
                out.append(
                    chunk(
                        envelope, event.index, event.text, event.finish_reason, event.stop_reason, with_usage
                    )
                )
            await response.write(b"".join(out))
        if with_usage:
            used = usage(submission.prompt_tokens, submission.completion_tokens, submission.cached_tokens)
            await response.write(usage_chunk(envelope, used))
        await response.write(DONE)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; _generate's finally frees its sequences
    return response


async def models(request: web.Request) -> web.Response:
    """GET /v1/models."""
    engine = _engine(request)
    if not engine.is_ready:
        raise ApiError(503, engine.unavailable_reason())
    config = engine.config
    created = int(time.time())
    # Like vLLM: one card per served name, in the order given, all with the same root.
    cards: list[dict[str, Any]] = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": config.model,
            "parent": None,
            "max_model_len": config.max_model_len,
        }
        for name in config.names
    ]
    return json_response({"object": "list", "data": cards})


async def health(request: web.Request) -> web.Response:
    """GET /health: 200 once loaded (also while asleep, like vLLM), 503 while loading."""
    engine = _engine(request)
    if engine.state in (EngineState.READY, EngineState.SLEEPING):
        return web.Response()
    raise ApiError(503, engine.unavailable_reason())


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics in Prometheus text format."""
    page = _engine(request).render_metrics().encode()
    return web.Response(body=page, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def sleep(request: web.Request) -> web.Response:
    """POST /sleep?level=1."""
    await _engine(request).sleep()
    return web.Response()


async def wake_up(request: web.Request) -> web.Response:
    """POST /wake_up."""
    await _engine(request).wake_up()
    return web.Response()


async def is_sleeping(request: web.Request) -> web.Response:
    """GET /is_sleeping."""
    return json_response({"is_sleeping": _engine(request).state is EngineState.SLEEPING})


async def version(request: web.Request) -> web.Response:
    """GET /version."""
    return json_response({"version": f"gllm-sim {__version__}"})


def create_app(engine: SimEngine) -> web.Application:
    """The aiohttp application serving one engine."""
    app = web.Application(middlewares=[_api_errors], client_max_size=64 * 1024 * 1024)
    app[ENGINE_KEY] = engine
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_get(f"{prefix}/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/ping", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/sleep", sleep)
    app.router.add_post("/wake_up", wake_up)
    app.router.add_get("/is_sleeping", is_sleeping)
    app.router.add_get("/version", version)
    return app


class EngineServer:
    """One engine behind its own TCP site; many of them share one process and event loop."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.engine = SimEngine(config)
        self.port = config.port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL (without /v1)."""
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> None:
        """Bind the port at once (the engine loads in the background) and start serving."""
        runner = web.AppRunner(
            create_app(self.engine), access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port, backlog=1024, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.engine.start()

    async def wait_ready(self) -> None:
        """Return once the engine's model is loaded."""
        await self.engine.wait_ready()

    async def stop(self) -> None:
        """Fail in-flight requests, close connections and free the port."""
        await self.engine.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
