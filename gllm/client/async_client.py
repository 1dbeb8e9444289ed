"""AsyncGLLM: the asyncio twin of GLLM (a thin httpx transport over the shared protocol code)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from gllm.client._base import CONNECTION_LIMITS, ClientBase
from gllm.client._generation import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    Generation,
    Messages,
    Stop,
)
from gllm.client._progress import make_progress
from gllm.client._protocol import (
    Kind,
    RequestSpec,
    control_spec,
    decode_json,
    decode_object,
    error_from_response,
    load_model_spec,
    model_ids,
    pick_model,
    transport_error,
    worker_spec,
)
from gllm.client._sse import ChunkDecoder
from gllm.client._waiting import (
    Deadline,
    check_interval_ok,
    is_healthy_status,
    is_live_status,
    is_transient,
)
from gllm.client._workers import WorkerStatus, parse_workers, readiness
from gllm.client.errors import GLLMError, GLLMTimeoutError, ModelLoadError


class AsyncGLLM(ClientBase):
    """Asyncio client of a GLLM balancer: GLLM's methods as coroutines, streams as async generators."""

    def __init__(
        self,
        server_address: str,
        api_key: str | None = None,
        *,
        timeout: float | None = 600.0,
        connect_timeout: float = 5.0,
        control_timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            server_address,
            api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            control_timeout=control_timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            headers=headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            limits=CONNECTION_LIMITS, timeout=self.settings.control()
        )

    async def close(self) -> None:
        """Close the connection pool (not an http_client passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- transport -------------------------------------------------------------------------------------------

    async def _request(self, spec: RequestSpec, stream: bool = False) -> httpx.Response:
        """Send `spec`, retrying as the policy allows; return a response with a status below 400."""
        attempt = 0
        while True:
            request = self._http.build_request(
                spec.method,
                self._url(spec),
                content=spec.content(),
                headers=self._headers(spec),
                timeout=spec.timeout,
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(spec, attempt, exc)
            else:
                if response.status_code < 400:
                    return response
                try:
                    await response.aread()
                except httpx.TransportError as exc:
                    delay = self._delay_after_error(spec, attempt, exc)
                else:
                    error = error_from_response(
                        response.status_code, response.headers, response.content, spec.method, self._url(spec)
                    )
                    delay = self._delay_after_status(spec, attempt, error)
                finally:
                    await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    # -- generation ------------------------------------------------------------------------------------------

    async def _resolve_model(self, model: str | None) -> str:
        return self._cached_model(model) or self._remember_model(pick_model(await self.models()))

    async def _generate(self, call: Generation) -> Any:
        spec = call.spec(await self._resolve_model(call.model), self.settings)
        return call.shape(decode_object((await self._request(spec)).content, spec.path))

    async def _stream(self, call: Generation) -> AsyncGenerator[Any, None]:
        """Send a streaming call and yield its shaped chunks until `[DONE]`; closing the generator hangs up."""
        spec = call.spec(await self._resolve_model(call.model), self.settings)
        response = await self._request(spec, stream=True)
        decoder = ChunkDecoder(call.shape_chunk)
        try:
            async for line in response.aiter_lines():
                for item in decoder.feed(line):
                    yield item
                if decoder.done:
                    return
            for item in decoder.finish():
                yield item
        except httpx.TransportError as exc:
            raise transport_error(exc, spec, self.settings.base_url) from exc
        finally:
            await response.aclose()

    async def get_completions(
        self,
        prompt: str | list[str] | list[int] | list[list[int]],
        model: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = DEFAULT_TEMPERATURE,
        top_p: float | None = DEFAULT_TOP_P,
        stop: Stop = None,
        return_mode: str = "primitives",
        **kwargs: Any,
    ) -> Any:
        """POST /completions; returns text (list of texts for n>1), an openai Completion, or the raw dict."""
        call = Generation(
            Kind.COMPLETION, prompt, model, max_tokens, temperature, top_p, stop, return_mode, kwargs, False
        )
        return await self._generate(call)

    async def get_chat_completion(
        self,
        messages: Messages,
        model: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = DEFAULT_TEMPERATURE,
        top_p: float | None = DEFAULT_TOP_P,
        stop: Stop = None,
        return_mode: str = "primitives",
        **kwargs: Any,
    ) -> Any:
        """POST /chat/completions; returns text (list for n>1), an openai ChatCompletion, or the raw dict."""
        call = Generation(
            Kind.CHAT, messages, model, max_tokens, temperature, top_p, stop, return_mode, kwargs, False
        )
        return await self._generate(call)

    def stream_completions(
        self,
        prompt: str | list[str] | list[int] | list[list[int]],
        model: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = DEFAULT_TEMPERATURE,
        top_p: float | None = DEFAULT_TOP_P,
        stop: Stop = None,
        return_mode: str = "primitives",
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """Stream /completions: text deltas, openai Completion chunks or raw dicts; sent when iterated."""
        call = Generation(
            Kind.COMPLETION, prompt, model, max_tokens, temperature, top_p, stop, return_mode, kwargs, True
        )
        return self._stream(call)

    def stream_chat_completion(
        self,
        messages: Messages,
        model: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = DEFAULT_TEMPERATURE,
        top_p: float | None = DEFAULT_TOP_P,
        stop: Stop = None,
        return_mode: str = "primitives",
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """Stream /chat/completions: text deltas, openai ChatCompletionChunks or raw dicts; sent when iterated."""
        call = Generation(
            Kind.CHAT, messages, model, max_tokens, temperature, top_p, stop, return_mode, kwargs, True
        )
        return self._stream(call)

    # -- control ---------------------------------------------------------------------------------------------

    async def models(self, timeout: float | None = None) -> list[str]:
        """GET /models: the ids of the models the cluster serves."""
        spec = control_spec("GET", "/models", self.settings, timeout)
        return model_ids(decode_json((await self._request(spec)).content, spec.path))

    async def workers(self, timeout: float | None = None) -> list[WorkerStatus]:
        """GET /workers: every worker with its address, in-flight count, health, state and model."""
        return await self._workers(timeout, retry=True)

    async def _workers(self, timeout: float | None, retry: bool) -> list[WorkerStatus]:
        spec = control_spec("GET", "/workers", self.settings, timeout, retry)
        return parse_workers(decode_json((await self._request(spec)).content, spec.path))

    async def load_model(self, model_identifier: str, force_reload: bool = False, timeout: float = 10) -> str:
        """POST /load_model: ask every worker to load the model; returns the balancer's reply text."""
        response = await self._request(
            load_model_spec(model_identifier, force_reload, timeout, self.settings)
        )
        self._remember_model(model_identifier)
        return response.text

    async def release_gpus(self, timeout: float = 60) -> str:
        """POST /release_gpus: stop every worker's engine; returns the balancer's reply text."""
        return (await self._request(control_spec("POST", "/release_gpus", self.settings, timeout))).text

    async def add_worker(self, address: str) -> str:
        """POST /add_worker: register a worker; returns the cluster's model ("" when none)."""
        return (await self._request(worker_spec("/add_worker", address, self.settings))).text

    async def remove_worker(self, address: str) -> None:
        """POST /remove_worker: stop sending new requests to a worker."""
        await self._request(worker_spec("/remove_worker", address, self.settings))

    # -- health and waiting ----------------------------------------------------------------------------------

    async def _probe(self, timeout: float) -> int | None:
        """GET /health once, without retries: its status, or None when the server did not answer."""
        try:
            response = await self._http.get(
                self.settings.base_url + "/health",
                headers=self.settings.base_headers(),
                timeout=self.settings.control(timeout),
            )
        except httpx.TransportError:
            return None
        return response.status_code

    async def is_healthy(self, timeout: float = 5) -> bool:
        """Whether GET /health answers 200 (every worker healthy)."""
        return is_healthy_status(await self._probe(timeout))

    async def wait_for_health(self, timeout: float = 300, check_interval: float = 5) -> bool:
        """Poll /health until it answers 200; returns True, raises GLLMTimeoutError after `timeout` seconds."""
        await self._wait_for("healthy", is_healthy_status, timeout, check_interval)
        return True

    async def wait_for_live(self, timeout: float = 300, check_interval: float = 5) -> None:
        """Poll /health until the server answers at all (any status); raises GLLMTimeoutError on timeout."""
        await self._wait_for("live", is_live_status, timeout, check_interval)

    async def _wait_for(
        self, what: str, accept: Callable[[int | None], bool], timeout: float, check_interval: float
    ) -> None:
        check_interval_ok(check_interval)
        deadline = Deadline(timeout)
        while not accept(await self._probe(deadline.probe_timeout(check_interval))):
            if deadline.expired():
                raise GLLMTimeoutError(f"{self.server_address} was not {what} within {timeout}s")
            await asyncio.sleep(deadline.pause(check_interval))

    async def wait_for_model(
        self,
        model: str | None = None,
        timeout: float = 600,
        check_interval: float = 1.0,
        progress: bool | None = None,
    ) -> list[WorkerStatus]:
        """Poll /workers until every worker is ready with `model` (default: the last one loaded).

        Shows a progress bar on stderr when it is a terminal (`progress` True/False forces it on/off).
        Raises ModelLoadError as soon as a worker reports `failed`, GLLMTimeoutError after `timeout` seconds.
        """
        wanted = self._model_to_wait_for(model)
        check_interval_ok(check_interval)
        deadline = Deadline(timeout)
        reporter = make_progress(wanted, progress)
        summary = "no answer from the balancer yet"
        try:
            while True:
                try:
                    workers = await self._workers(deadline.probe_timeout(check_interval), retry=False)
                except GLLMError as exc:
                    if not is_transient(exc):
                        raise
                else:
                    state = readiness(workers, wanted)
                    reporter.update(state)
                    summary = state.summary()
                    if state.failures:
                        raise ModelLoadError(wanted, dict(state.failures))
                    if state.done:
                        return workers
                if deadline.expired():
                    raise GLLMTimeoutError(f"model {wanted!r} not ready within {timeout}s: {summary}")
                await asyncio.sleep(deadline.pause(check_interval))
        finally:
            reporter.close()
