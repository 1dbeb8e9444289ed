"""The worker protocol's routes, each served at the root and under /v1."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from aiohttp import web

from gllm import __version__
from gllm.worker.context import CONTEXT, WorkerContext
from gllm.worker.errors import openai_error
from gllm.worker.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gllm.worker.metrics import METRICS, engine_metrics
from gllm.worker.relay import relay
from gllm.worker.state import WorkerState

HEALTH_PROBE_TIMEOUT = 2.0
MODELS_TIMEOUT = 10.0
LOADING_RETRY_AFTER = "5"

_NOT_READY_TEXT = {
    WorkerState.IDLE: "No model loaded",
    WorkerState.LOADING: "Loading model {model}",
    WorkerState.FAILED: "Engine failed: {error}",
    WorkerState.STOPPING: "Engine stopping",
    WorkerState.RELEASED: "GPUs released",
}


def _context(request: web.Request) -> WorkerContext:
    return request.app[CONTEXT]


def _not_ready_text(context: WorkerContext) -> str:
    supervisor = context.supervisor
    template = _NOT_READY_TEXT.get(supervisor.state, "Engine not ready")
    return template.format(model=supervisor.model, error=supervisor.status().last_error)


async def health(request: web.Request) -> web.Response:
    """200 only when the engine is ready and answers its own health check."""
    context = _context(request)
    if context.supervisor.state is not WorkerState.READY:
        return web.Response(status=503, text=_not_ready_text(context))
    if not await context.supervisor.engine_healthy(HEALTH_PROBE_TIMEOUT):
        return web.Response(status=503, text="Engine not answering its health check")
    return web.Response(text="Engine ready")


async def status(request: web.Request) -> web.Response:
    """The worker's state, model, engine and registration as JSON."""
    context = _context(request)
    body: dict[str, Any] = context.supervisor.status().to_json()
    body["version"] = __version__
    body["worker_uptime_s"] = round(time.monotonic() - context.started, 3)
    body["balancer"] = context.registrar.info() if context.registrar is not None else None
    return web.json_response(body)


async def logs(request: web.Request) -> web.Response:
    """The engine's recent output as text."""
    return web.Response(text="\n".join(_context(request).supervisor.logs()) + "\n")


def _reply(context: WorkerContext, message: str) -> web.Response:
    supervisor = context.supervisor
    return web.json_response({"status": message, "state": supervisor.state.value, "model": supervisor.model})


async def load_model(request: web.Request) -> web.Response:
    """Start (or restart) the engine with a model; answers at once, the load goes on in the background."""
    context = _context(request)
    try:
        body = await request.json()
    except ValueError:
        return web.Response(status=400, text="Malformed JSON body")
    if not isinstance(body, dict):
        return web.Response(status=400, text="The body must be a JSON object")
    model = body.get("model_path")
    force = body.get("force_reload", False)
    if not isinstance(model, str) or not model.strip():
        return web.Response(status=400, text="model_path must be a non-empty string")
    if not isinstance(force, bool):
        return web.Response(status=400, text="force_reload must be a boolean")
    try:
        started = context.supervisor.request_load(model.strip(), force_reload=force)
    except RuntimeError as exc:
        return web.Response(status=503, text=str(exc))
    if started:
        return _reply(context, "Model load started")
    return _reply(context, f"Model already {context.supervisor.state.value}")


async def release_gpus(request: web.Request) -> web.Response:
    """Stop the engine and its whole process tree; answers when it is stopped."""
    context = _context(request)
    await context.supervisor.release()
    return _reply(context, "Gpus released")


def _model_list(context: WorkerContext) -> dict[str, Any]:
    supervisor = context.supervisor
    model = supervisor.model
    created = int(supervisor.status().load_started_at or time.time())
    data = [{"id": model, "object": "model", "created": created, "owned_by": "gllm"}] if model else []
    return {"object": "list", "data": data}


async def models(request: web.Request) -> web.Response:
    """The engine's model list when ready, else one built from the worker's state."""
    context = _context(request)
    if context.supervisor.state is WorkerState.READY:
        timeout = aiohttp.ClientTimeout(total=MODELS_TIMEOUT)
        try:
            async with context.session.get(context.supervisor.api_base + "/models", timeout=timeout) as resp:
                if resp.status == 200:
                    return web.Response(
                        body=await resp.read(), content_type="application/json", charset=resp.charset
                    )
        except (aiohttp.ClientError, TimeoutError):
            pass
    return web.json_response(_model_list(context))


async def metrics(request: web.Request) -> web.Response:
    """The worker's own metrics, followed by its engine's when one runs (Prometheus text)."""
    context = _context(request)
    own = request.app[METRICS].render()
    engine = await engine_metrics(context.supervisor, context.session)
    return web.Response(body=own + (engine or b""), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def raw_engine_metrics(request: web.Request) -> web.StreamResponse:
    """The engine's Prometheus metrics, relayed as they are."""
    context = _context(request)
    if context.supervisor.status().engine_pid is None:
        return web.Response(status=503, text=_not_ready_text(context))
    url = f"http://127.0.0.1:{context.supervisor.spec.port}/metrics"
    return await relay(request, context.session, url, aiohttp.ClientTimeout(total=MODELS_TIMEOUT))


async def openai(request: web.Request) -> web.StreamResponse:
    """Relay an OpenAI request to the engine, streaming the answer back."""
    context = _context(request)
    supervisor = context.supervisor
    if supervisor.state is not WorkerState.READY:
        headers = {"Retry-After": LOADING_RETRY_AFTER} if supervisor.state is WorkerState.LOADING else None
        message = f"Engine not ready ({supervisor.state.value}): {_not_ready_text(context)}"
        return openai_error(503, message, "service_unavailable", "engine_not_ready", headers)
    tail = request.match_info["tail"]
    return await relay(request, context.session, f"{supervisor.api_base}/{tail}", context.relay_timeout)


def add_routes(app: web.Application) -> None:
    """Register every route at the root and under /v1."""
    for prefix in ("", "/v1"):
        app.router.add_get(prefix + "/health", health)
        app.router.add_get(prefix + "/status", status)
        app.router.add_get(prefix + "/logs", logs)
        app.router.add_get(prefix + "/models", models)
        app.router.add_get(prefix + "/metrics", metrics)
        app.router.add_get(prefix + "/engine/metrics", raw_engine_metrics)
        app.router.add_post(prefix + "/load_model", load_model)
        app.router.add_post(prefix + "/release_gpus", release_gpus)
        app.router.add_post(prefix + "/{tail:chat/completions}", openai)
        app.router.add_post(prefix + "/{tail:completions}", openai)
    # Anything else under /v1 (embeddings, tokenize, ...) goes to the engine as well.
    app.router.add_route("*", "/v1/{tail:.+}", openai)
