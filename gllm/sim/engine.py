"""SimEngine: the state of one simulated engine (loading, ready, sleeping) and the entry for requests."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections.abc import AsyncIterator

from gllm.sim.config import SimConfig
from gllm.sim.metrics import EngineMetrics, Gauges
from gllm.sim.openai_api import ApiError, GenerationRequest
from gllm.sim.scheduler import Scheduler, Sequence, TokenEvent
from gllm.sim.textgen import OutputText, TokenSampler, request_seed


class EngineState(enum.StrEnum):
    """Life cycle of an engine."""

    LOADING = "loading"
    READY = "ready"
    SLEEPING = "sleeping"
    STOPPED = "stopped"


class Submission:
    """The sequences of one request and the queue their tokens arrive on."""

    def __init__(self, scheduler: Scheduler, request: GenerationRequest, rng: random.Random) -> None:
        loop = asyncio.get_running_loop()
        self._scheduler = scheduler
        self._queue: asyncio.Queue[TokenEvent] = asyncio.Queue()
        self.request = request
        self.sequences: list[Sequence] = []
        sampling = request.sampling
        for prompt_index, prompt in enumerate(request.prompts):
            for choice in range(sampling.n):
                seed = request_seed(prompt.token_ids, sampling.seed, choice, greedy=sampling.temperature == 0)
                sampler = TokenSampler(
                    rng.getrandbits(64) if seed is None else seed, leading_space=request.leading_space
                )
                self.sequences.append(
                    Sequence(
                        index=prompt_index * sampling.n + choice,
                        prompt_ids=prompt.token_ids,
                        max_tokens=sampling.max_tokens,
                        sampler=sampler,
                        text=OutputText(sampling.stop, sampling.include_stop),
                        sink=self._queue,
                        arrival=loop.time(),
                        block_size=scheduler.config.block_size,
                        min_tokens=sampling.min_tokens,
                        ignore_eos=sampling.ignore_eos,
                    )
                )
        for seq in self.sequences:
            scheduler.add(seq)

    async def batches(self) -> AsyncIterator[list[TokenEvent]]:
        """Events as they come, grouped by what is already available; ends when all finished or on error."""
        remaining = len(self.sequences)
        while remaining:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            yield batch
            for event in batch:
                if event.error is not None:
                    return
                if event.finish_reason is not None:
                    remaining -= 1

    def cancel(self) -> None:
        """Abort every sequence still queued or running (client gone or request done)."""
        now = asyncio.get_running_loop().time()
        for seq in self.sequences:
            self._scheduler.abort(seq, now)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of the request, counted once per prompt."""
        return sum(len(prompt.token_ids) for prompt in self.request.prompts)

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over all choices."""
        return sum(seq.generated for seq in self.sequences)

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens found in the prefix cache (first choice of each prompt)."""
        n = self.request.sampling.n
        return sum(seq.cached_tokens or 0 for seq in self.sequences[::n])


class SimEngine:
    """One simulated engine: scheduler, metrics and life cycle, without any HTTP."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.metrics = EngineMetrics(config.name)
        self.scheduler = Scheduler(config, self.metrics)
        self.state = EngineState.LOADING
        self._rng = random.Random(config.seed)
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start loading the model and the batch loop (in the running event loop)."""
        self._tasks = [asyncio.create_task(self._load()), asyncio.create_task(self.scheduler.run())]

    async def wait_ready(self) -> None:
        """Return once the model is loaded."""
        await self._ready.wait()

    @property
    def is_ready(self) -> bool:
        """Whether the model has finished loading (it may be asleep since)."""
        return self._ready.is_set()

    async def close(self) -> None:
        """Fail in-flight requests and stop the background tasks."""
        self.state = EngineState.STOPPED
        self.scheduler.abort_all("The engine is shutting down.", self._now())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def submit(self, request: GenerationRequest) -> Submission:
        """Queue a validated request; 503 while loading or asleep."""
        if self.state is not EngineState.READY:
            raise ApiError(503, self.unavailable_reason())
        return Submission(self.scheduler, request, self._rng)

    def unavailable_reason(self) -> str:
        """Why the engine refuses generation in its current state."""
        if self.state is EngineState.LOADING:
            return f"The model `{self.config.name}` is still loading."
        if self.state is EngineState.SLEEPING:
            return "The engine is sleeping; POST /wake_up first."
        return "The engine is not serving."

    async def sleep(self) -> None:
        """Offload the model (like sleep level 1): fail in-flight requests, drop the KV and prefix cache."""
        self._require_loaded()
        if self.state is EngineState.SLEEPING:
            return
        self.state = EngineState.SLEEPING
        self.scheduler.abort_all("The engine was put to sleep.", self._now())
        self.scheduler.cache.reset()

    async def wake_up(self) -> None:
        """Bring the model back; takes `wake_time_s`."""
        self._require_loaded()
        if self.state is EngineState.SLEEPING:
            await asyncio.sleep(self.config.scaled(self.config.wake_time_s))
            if self.state is EngineState.SLEEPING:
                self.state = EngineState.READY

    def render_metrics(self) -> str:
        """The /metrics page."""
        scheduler = self.scheduler
        gauges = Gauges(len(scheduler.running), len(scheduler.waiting), scheduler.cache.usage)
        return self.metrics.render(gauges)

    def _require_loaded(self) -> None:
        if self.state in (EngineState.LOADING, EngineState.STOPPED):
            raise ApiError(503, self.unavailable_reason())

    async def _load(self) -> None:
        await asyncio.sleep(self.config.scaled(self.config.load_time_s))
        if self.state is EngineState.LOADING:
            self.state = EngineState.READY
            self._ready.set()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
