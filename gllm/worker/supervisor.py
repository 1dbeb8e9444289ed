"""The engine supervisor: start an engine for a model, wait for it to be ready, stop it, notice crashes.

Every state change happens on the event loop; process start and stop run one at a time under a lock. Each
load or release takes a new generation number, so an older load that is still waiting for readiness notices
that it was superseded and quietly ends instead of fighting the newer request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp

from gllm.worker.engines import EngineLaunch, EngineSpec
from gllm.worker.logring import LogRing
from gllm.worker.process import spawn, terminate_tree, wait_exit
from gllm.worker.state import WorkerState, WorkerStatus

logger = logging.getLogger("gllm.worker")
engine_logger = logging.getLogger("gllm.worker.engine")

FAILURE_LOG_LINES = 50  # engine output lines kept in the status of a failed load


@dataclass(frozen=True)
class SupervisorConfig:
    """Timing knobs of the supervisor (seconds)."""

    load_timeout: float = 1800.0
    stop_grace: float = 15.0
    poll_interval: float = 0.25
    health_timeout: float = 2.0
    log_lines: int = 200


@dataclass
class _Engine:
    """One running engine process and its helpers."""

    model: str
    launch: EngineLaunch
    proc: asyncio.subprocess.Process
    logs: LogRing
    started: float  # time.monotonic() at spawn
    reader: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    stopping: bool = False  # set before we stop it on purpose: its exit is then not a crash


def describe_exit(code: int) -> str:
    """'exited with code 3' or 'was killed by SIGKILL'."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class EngineSupervisor:
    """Runs at most one engine process for one model at a time."""

    def __init__(
        self, spec: EngineSpec, session: aiohttp.ClientSession, config: SupervisorConfig | None = None
    ) -> None:
        self._spec = spec
        self._session = session
        self._config = config or SupervisorConfig()
        self._lock = asyncio.Lock()
        self._state = WorkerState.IDLE
        self._model: str | None = None
        self._engine: _Engine | None = None
        self._generation = 0
        self._load_started_at: float | None = None
        self._ready_at: float | None = None
        self._load_duration: float | None = None
        self._last_error: str | None = None
        self._failed_lines: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def state(self) -> WorkerState:
        """The current state."""
        return self._state

    @property
    def model(self) -> str | None:
        """The model loaded or being loaded (None when idle or released)."""
        return self._model

    @property
    def closed(self) -> bool:
        """Whether shutdown began (no more loads)."""
        return self._closed

    @property
    def spec(self) -> EngineSpec:
        """How engines are started."""
        return self._spec

    @property
    def api_base(self) -> str:
        """URL prefix of the engine's OpenAI API, such as http://127.0.0.1:8010/v1."""
        return f"http://127.0.0.1:{self._spec.port}{self._spec.preset.api_prefix}"

    def logs(self) -> list[str]:
        """The current engine's recent output (or the failed one's)."""
        return self._engine.logs.lines() if self._engine is not None else list(self._failed_lines)

    def status(self) -> WorkerStatus:
        """A snapshot for GET /status."""
        engine = self._engine
        running = engine is not None and engine.proc.returncode is None
        return WorkerStatus(
            state=self._state,
            model=self._model,
            engine=self._spec.name,
            engine_pid=engine.proc.pid if engine is not None and running else None,
            engine_port=self._spec.port,
            gpus=list(self._spec.gpus),
            uptime_s=round(time.monotonic() - engine.started, 3) if engine is not None and running else None,
            load_started_at=self._load_started_at,
            ready_at=self._ready_at,
            load_duration_s=self._load_duration,
            last_error=self._last_error,
            last_log_lines=list(self._failed_lines) if self._state is WorkerState.FAILED else [],
        )

    def request_load(self, model: str, force_reload: bool = False) -> bool:
        """Start loading `model` in the background; False (a no-op) if it is already ready or loading."""
        if self._closed:
            raise RuntimeError("the worker is shutting down")
        active = self._state in (WorkerState.LOADING, WorkerState.READY)
        if not force_reload and active and model == self._model:
            return False
        self._generation += 1
        self._state = WorkerState.LOADING
        self._model = model
        self._last_error = None
        self._failed_lines = []
        self._load_started_at = time.time()
        self._ready_at = None
        self._load_duration = None
        self._track(self._load(model, self._generation))
        return True

    async def release(self) -> None:
        """Stop the engine and its process tree; the state becomes released.

        The stop runs as its own task: a caller that is cancelled (say, an HTTP client that hung up)
        cannot interrupt it halfway through.
        """
        await asyncio.shield(self._track(self._release()))

    async def _release(self) -> None:
        self._generation += 1
        generation = self._generation
        if self._engine is not None or self._state is WorkerState.LOADING:
            self._state = WorkerState.STOPPING
        async with self._lock:
            await self._stop_engine()
        if generation == self._generation:
            self._state = WorkerState.RELEASED
            self._model = None
            self._ready_at = None

    async def shutdown(self) -> None:
        """Stop the engine for good (on worker exit); later load requests are refused."""
        self._closed = True
        await self.release()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._config.health_timeout + 5)

    async def engine_healthy(self, timeout: float | None = None) -> bool:
        """Whether the engine's health route answers 200 right now."""
        engine = self._engine
        if engine is None or engine.proc.returncode is not None:
            return False
        return await self._probe(engine.launch, timeout or self._config.health_timeout)

    # -- internals -----------------------------------------------------------------------------------------

    def _track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fail(self, generation: int, error: str, lines: list[str]) -> None:
        if generation != self._generation:
            return
        logger.error("engine for %s failed: %s", self._model, error)
        self._state = WorkerState.FAILED
        self._last_error = error
        self._failed_lines = lines[-FAILURE_LOG_LINES:]
        self._ready_at = None

    async def _load(self, model: str, generation: int) -> None:
        try:
            async with self._lock:
                if generation != self._generation:
                    return
                await self._stop_engine()
                if generation != self._generation:
                    return
                engine = await self._start(model, generation)
            if engine is not None:
                await self._await_ready(engine, generation)
        except Exception as exc:  # never let a background load die silently
            logger.exception("loading %s failed", model)
            self._fail(generation, f"loading failed: {exc!r}", [])

    async def _start(self, model: str, generation: int) -> _Engine | None:
        try:
            launch = self._spec.launch(model)
        except ValueError as exc:
            self._fail(generation, str(exc), [])
            return None
        logger.info("starting engine for %s: %s", model, " ".join(launch.argv))
        try:
            proc = await spawn(launch)
        except OSError as exc:
            self._fail(generation, f"could not start engine {launch.argv[0]!r}: {exc}", [])
            return None
        logs = LogRing(self._config.log_lines, echo=lambda line: engine_logger.info("%s", line))
        engine = _Engine(model=model, launch=launch, proc=proc, logs=logs, started=time.monotonic())
        engine.reader = asyncio.create_task(self._read_output(engine))
        engine.watcher = asyncio.create_task(self._watch(engine, generation))
        self._engine = engine
        return engine

    async def _await_ready(self, engine: _Engine, generation: int) -> None:
        deadline = time.monotonic() + self._config.load_timeout
        while generation == self._generation and engine.proc.returncode is None:
            if await self._probe(engine.launch, self._config.health_timeout):
                if (
                    generation == self._generation
                    and engine is self._engine
                    and engine.proc.returncode is None
                ):
                    self._state = WorkerState.READY
                    self._ready_at = time.time()
                    self._load_duration = round(time.monotonic() - engine.started, 3)
                    logger.info("engine ready with %s after %.1fs", engine.model, self._load_duration)
                return
            if time.monotonic() >= deadline:
                error = f"engine did not become healthy within {self._config.load_timeout:g}s"
                self._fail(generation, error, engine.logs.lines())
                async with self._lock:
                    if self._engine is engine:
                        await self._stop_engine()
                return
            await asyncio.sleep(self._config.poll_interval)
        # The engine exited (the watcher reports it) or a newer request took over.

    async def _probe(self, launch: EngineLaunch, timeout: float) -> bool:
        url = launch.base_url + launch.health_path
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _read_output(self, engine: _Engine) -> None:
        stream = engine.proc.stdout
        if stream is None:
            return
        try:
            while chunk := await stream.read(65536):
                engine.logs.feed(chunk)
        finally:
            engine.logs.flush()

    async def _watch(self, engine: _Engine, generation: int) -> None:
        code = await wait_exit(engine.proc)
        if engine.stopping or engine is not self._engine:
            return
        if engine.reader is not None:  # let the last lines arrive (helpers may hold the pipe: bounded wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(engine.reader), 1.0)
        if engine.stopping or engine is not self._engine:
            return
        phase = "while loading" if self._state is WorkerState.LOADING else "unexpectedly"
        self._fail(generation, f"engine {describe_exit(code)} {phase}", engine.logs.lines())
        async with self._lock:  # stop helpers the engine left behind (they may hold GPU memory)
            if self._engine is engine:
                await self._stop_engine()

    async def _stop_engine(self) -> None:
        """Stop the current engine's process tree (caller holds the lock)."""
        engine = self._engine
        if engine is None:
            return
        engine.stopping = True
        try:
            if engine.proc.returncode is None:
                logger.info("stopping engine pid %d", engine.proc.pid)
            killed = await terminate_tree(engine.proc, self._config.stop_grace)
            if killed:
                logger.warning("engine did not stop within %.1fs of SIGTERM: killed", self._config.stop_grace)
        finally:
            if self._state is WorkerState.FAILED:
                self._failed_lines = (self._failed_lines or engine.logs.lines())[-FAILURE_LOG_LINES:]
            for task in (engine.reader, engine.watcher):
                # The watcher itself may be the caller: it must not wait for itself.
                if task is not None and not task.done() and task is not asyncio.current_task():
                    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(task, 2.0)
            self._engine = None
