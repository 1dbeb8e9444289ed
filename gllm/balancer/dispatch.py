"""One client request from start to end: choose a worker, forward, retry elsewhere, fail over a broken stream."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import orjson

from gllm.balancer.backpressure import Admission, QueueFull
from gllm.balancer.cluster import Cluster, Unavailable
from gllm.balancer.failover import continuation, read_progress
from gllm.balancer.metrics import BalancerMetrics
from gllm.balancer.policies import RoutingContext
from gllm.balancer.proxy import Exchange, Proxy, StreamBroken, WorkerFailed
from gllm.balancer.registry import Worker
from gllm.balancer.request_log import RequestIds, RequestRecord, log_access
from gllm.balancer.responses import send_error
from gllm.balancer.retry import RetrySettings
from gllm.balancer.sse import SseRelay
from gllm.http.server import HttpRequest, ResponseWriter

log = logging.getLogger("gllm.balancer")


class Dispatcher:
    """Routes one request through the policy and proxy, with bounded retries and mid-stream failover."""

    def __init__(
        self,
        cluster: Cluster,
        proxy: Proxy,
        retry: RetrySettings,
        rng: random.Random,
        admission: Admission,
        metrics: BalancerMetrics,
        cap: int | None = None,
        access_log: bool = False,
    ) -> None:
        self._cluster = cluster
        self._proxy = proxy
        self._retry = retry
        self._rng = rng
        self._admission = admission
        self._cap = cap
        self._access_log = access_log
        self._metrics = metrics
        self._ids = RequestIds()
        self.active = 0  # client requests being served right now
        self.idle = asyncio.Event()  # set while `active` is zero
        self.idle.set()
        self.draining = False

    async def dispatch(
        self, request: HttpRequest, writer: ResponseWriter, path: str, payload: dict[str, Any]
    ) -> None:
        """Answer `request` (already parsed as `payload`) from some worker."""
        request_id, generated = self._ids.take(request.header(b"x-request-id"))
        writer.extra_head = b"x-request-id: %s\r\n" % request_id
        if self.draining:
            writer.close_after = True
            send_error(
                writer, 503, "The balancer is shutting down", "shutting_down", ((b"retry-after", b"1"),)
            )
            return
        record = RequestRecord(request_id, generated, path)
        exchange = Exchange(request, writer, path, payload.get("stream") is True, record)
        self.active += 1
        self.idle.clear()
        try:
            await self._dispatch(exchange, payload)
        finally:
            self.active -= 1
            if not self.active:
                self.idle.set()
            self._done(exchange)

    def _done(self, exchange: Exchange) -> None:
        """Account for a finished request: metrics, statistics and the access log."""
        record = exchange.record
        if exchange.writer.status:
            record.status = exchange.writer.status  # an answer the balancer made itself
        elapsed = time.perf_counter() - record.started
        chunks = len(record.relay.events) if record.relay is not None else 0
        self._metrics.request_done(
            record.path, record.status, record.worker, record.ttfb, elapsed, chunks, record.error
        )
        if self._access_log:
            log_access(record, self._cluster.policy.name)

    async def _dispatch(self, exchange: Exchange, payload: dict[str, Any]) -> None:
        request, record = exchange.request, exchange.record
        model = payload.get("model")
        ctx = RoutingContext(model if isinstance(model, str) else None, payload, request.headers)
        tried: list[Worker] = []
        last: WorkerFailed | None = None
        for attempt in range(1, self._retry.max_attempts + 1):
            worker = await self._choose(ctx, tried, exchange, last)
            if worker is None:
                return
            try:
                await self._forward(worker, exchange, request.body)
                return
            except WorkerFailed as exc:
                last = exc
                worker.last_error = str(exc)
                tried.append(worker)
                if exc.timed_out:
                    self._metrics.timeout("upstream")
                log.warning(
                    "request %s: worker %s failed (attempt %d, policy %s): %s",
                    record.id.decode(),
                    worker.address,
                    attempt,
                    self._cluster.policy.name,
                    exc,
                )
            except StreamBroken as exc:
                worker.last_error = str(exc)
                log.warning(
                    "request %s: worker %s broke a stream: %s", record.id.decode(), worker.address, exc
                )
                await self._fail_over(exchange, payload, ctx, [worker], exc)
                return
            if attempt < self._retry.max_attempts:
                record.retries += 1
                self._metrics.retry("timeout" if last.timed_out else "status" if last.status else "connect")
                await asyncio.sleep(self._retry.backoff(attempt, self._rng))
        assert last is not None
        self._send_failure(exchange, last)

    async def _choose(
        self, ctx: RoutingContext, tried: list[Worker], exchange: Exchange, last: WorkerFailed | None
    ) -> Worker | None:
        candidates = self._cluster.candidates(ctx.model, tried, self._cap)
        deadline: float | None = None
        while self._must_wait(candidates, deadline is None):
            deadline = deadline or self._admission.deadline()
            waited = time.perf_counter()
            try:
                admitted = await self._admission.wait(deadline)
            except QueueFull as exc:
                admitted, message, code = False, f"Too many requests waiting: {exc}", "queue_full"
            else:
                message, code = f"No worker freed up within {self._admission.timeout:g}s", "queue_timeout"
            if not admitted:
                self._metrics.queue_rejected()
                self._refuse(exchange, 429, message, code, 1)
                return None
            self._metrics.queue_wait(time.perf_counter() - waited)
            candidates = self._cluster.candidates(ctx.model, tried, self._cap)
        if isinstance(candidates, Unavailable):
            if last is not None and tried:
                self._send_failure(exchange, last)
            else:
                self._refuse(
                    exchange, candidates.status, candidates.message, candidates.code, candidates.retry_after
                )
            return None
        worker = self._cluster.policy.choose(candidates, ctx)
        self._metrics.route_decision(self._cluster.policy.name)
        return worker

    def _must_wait(self, candidates: list[Worker] | Unavailable, newcomer: bool) -> bool:
        """Every suitable worker is at its cap, or (for a newcomer) others are already waiting for a slot."""
        if isinstance(candidates, Unavailable):
            return candidates.saturated
        return newcomer and self._cap is not None and self._admission.busy

    def _refuse(
        self, exchange: Exchange, status: int, message: str, code: str, retry_after: int | None
    ) -> None:
        """Answer with the balancer's own OpenAI-style error."""
        exchange.record.error = message
        retry = ((b"retry-after", b"%d" % retry_after),) if retry_after else ()
        send_error(exchange.writer, status, message, code, retry)

    async def _forward(
        self, worker: Worker, exchange: Exchange, body: bytes, continuing: SseRelay | None = None
    ) -> None:
        try:
            await self._proxy.forward(worker, exchange, body, continuing)
        finally:
            if self._cap is not None:
                self._admission.notify()  # a slot on `worker` is free again

    def _send_failure(self, exchange: Exchange, last: WorkerFailed) -> None:
        exchange.record.error = str(last)
        if last.answer is not None:
            exchange.record.status = last.answer[0].status
            self._proxy.send_answer(exchange.writer, last.answer)
        elif last.timed_out:
            self._refuse(exchange, 504, f"No worker answered in time: {last}", "worker_timeout", None)
        elif last.status is not None:
            message = f"No worker could serve the request: {last}"
            self._refuse(exchange, last.status, message, "worker_unavailable", None)
        else:
            self._refuse(exchange, 502, f"No worker could be reached: {last}", "worker_unreachable", None)

    async def _fail_over(
        self,
        exchange: Exchange,
        payload: dict[str, Any],
        ctx: RoutingContext,
        tried: list[Worker],
        broken: StreamBroken,
    ) -> None:
        """Continue a broken stream on other workers; close the client's connection when it cannot be done."""
        writer, record = exchange.writer, exchange.record
        relay: SseRelay | None = broken.relay
        for _ in range(self._retry.max_failovers):
            if relay is None:
                break
            progress = read_progress(relay.text())
            if progress is None:
                break
            if progress.finished:  # everything was delivered but the end of the stream
                if b"[DONE]" not in relay.text():
                    relay.feed(b"data: [DONE]\n\n")
                relay.finish()
                writer.finish()
                return
            body = continuation(exchange.path, payload, progress)
            candidates = self._cluster.candidates(ctx.model, tried)
            if body is None or isinstance(candidates, Unavailable):
                break
            worker = self._cluster.policy.choose(candidates, ctx)
            record.failovers += 1
            self._metrics.failover("mid_stream")
            log.info(
                "request %s: continuing a broken stream on %s after %d chunks",
                record.id.decode(),
                worker.address,
                progress.chunks,
            )
            try:
                await self._forward(worker, exchange, orjson.dumps(body), relay)
                writer.finish()
                return
            except (WorkerFailed, StreamBroken) as exc:
                worker.last_error = str(exc)
                tried.append(worker)
        writer.finish(close=True)  # the client sees the stream end early: the only honest signal left
