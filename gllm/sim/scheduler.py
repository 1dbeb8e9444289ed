"""Continuous batching: one loop per engine that steps the running batch like vLLM's scheduler.

Each step (1) makes room in the KV cache for every running sequence's next token, preempting the most
recently admitted sequence when the cache is full; (2) admits waiting sequences first come first served
while `max_num_seqs`, the step's token budget and free blocks allow, reusing prefix-cached blocks; (3) lasts
`decode_base_step_s + decode_per_seq_step_s * running + prefill_time_per_token_s * uncached prompt tokens
admitted`; (4) emits one token for every running sequence, so a newly admitted one gets its first token at
the end of its prefill step.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from gllm.sim.config import SimConfig
from gllm.sim.kvcache import Block, KVCache, extend_block_hashes
from gllm.sim.metrics import EngineMetrics
from gllm.sim.textgen import OutputText, TokenSampler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """Output of one sequence: new text, and how it ended on its last event."""

    index: int
    text: str
    finish_reason: str | None = None
    stop_reason: str | None = None
    error: str | None = None


class Sequence:
    """One sequence being generated (a request with n choices has n of them)."""

    __slots__ = (
        "arrival",
        "block_hashes",
        "blocks",
        "cached_tokens",
        "committed",
        "first_token_at",
        "generated",
        "ignore_eos",
        "index",
        "max_tokens",
        "min_tokens",
        "prompt_len",
        "sampler",
        "sink",
        "state",
        "text",
        "token_ids",
    )

    def __init__(
        self,
        *,
        index: int,
        prompt_ids: list[int],
        max_tokens: int,
        sampler: TokenSampler,
        text: OutputText,
        sink: asyncio.Queue[TokenEvent],
        arrival: float,
        block_size: int,
        min_tokens: int = 0,
        ignore_eos: bool = False,
    ) -> None:
        self.index = index
        self.token_ids = list(prompt_ids)
        self.prompt_len = len(prompt_ids)
        self.block_hashes: list[int] = []
        extend_block_hashes(self.block_hashes, self.token_ids, block_size)
        self.blocks: list[Block] = []
        self.committed = 0
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.ignore_eos = ignore_eos
        self.generated = 0
        self.sampler = sampler
        self.text = text
        self.sink = sink
        self.arrival = arrival
        self.first_token_at: float | None = None
        self.cached_tokens: int | None = None
        self.state = "new"


class Scheduler:
    """The batch of one engine: waiting queue, running sequences, KV cache, and the stepping loop."""

    def __init__(self, config: SimConfig, metrics: EngineMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.cache = KVCache(config.num_blocks, config.block_size, config.enable_prefix_caching)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._wakeup = asyncio.Event()

    def add(self, seq: Sequence) -> None:
        """Queue a sequence for admission."""
        seq.state = "waiting"
        self.waiting.append(seq)
        self._wakeup.set()

    def abort(self, seq: Sequence, now: float) -> None:
        """Drop a sequence whose client went away; no event is sent."""
        if seq.state == "waiting":
            self.waiting.remove(seq)
        elif seq.state == "running":
            self.running.remove(seq)
            self.cache.free(seq.blocks)
            seq.blocks = []
        else:
            return
        seq.state = "finished"
        self.metrics.record_finish("abort", now - seq.arrival)

    def abort_all(self, message: str, now: float) -> None:
        """End every sequence with an error event (engine put to sleep or shut down)."""
        for seq in [*self.running, *self.waiting]:
            self.abort(seq, now)
            seq.sink.put_nowait(TokenEvent(seq.index, "", error=message))

    async def run(self) -> None:
        """Step the batch forever; sleep while there is nothing to do."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if not self.running and not self.waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                next_at = loop.time()
            duration = self.config.scaled(self.schedule())
            if not self.running:  # cannot happen while max_model_len fits the cache; never spin
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = loop.time()
            # Keep the modelled rate when the host is briefly late by less than a step; otherwise restart.
            start = next_at if now - next_at < duration else now
            next_at = start + duration
            await asyncio.sleep(max(0.0, next_at - now))
            self.emit(loop.time())

    def schedule(self) -> float:
        """Prepare one step: make room, admit; return its simulated duration in seconds."""
        self._reserve_decode_slots()
        prefill_tokens = self._admit()
        cfg = self.config
        return (
            cfg.decode_base_step_s
            + cfg.decode_per_seq_step_s * len(self.running)
            + cfg.prefill_time_per_token_s * prefill_tokens
        )

    def emit(self, now: float) -> None:
        """End one step: one token for each running sequence; finish those that are done."""
        block_size = self.config.block_size
        eos_probability = self.config.eos_probability
        for seq in list(self.running):
            if seq.first_token_at is None:
                seq.first_token_at = now
                self.metrics.ttft.observe(now - seq.arrival)
            seq.generated += 1
            self.metrics.generation_tokens += 1
            finish: str | None = None
            stop: str | None = None
            if (
                not seq.ignore_eos
                and seq.generated > seq.min_tokens
                and seq.sampler.ends_here(eos_probability)
            ):
                finish, delta = "stop", seq.text.flush()
            else:
                token, piece = seq.sampler.next_token()
                seq.token_ids.append(token)
                extend_block_hashes(seq.block_hashes, seq.token_ids, block_size)
                delta, stop = seq.text.append(piece)
                if stop is not None:
                    finish = "stop"
                elif seq.generated >= seq.max_tokens:
                    finish = "length"
                    delta += seq.text.flush()
            if finish is not None:
                self._finish(seq, finish, now)
            if delta or finish is not None:
                seq.sink.put_nowait(TokenEvent(seq.index, delta, finish, stop))

    def _finish(self, seq: Sequence, reason: str, now: float) -> None:
        self.running.remove(seq)
        self.cache.free(seq.blocks)
        seq.blocks = []
        seq.state = "finished"
        self.metrics.record_finish(reason, now - seq.arrival)

    def _reserve_decode_slots(self) -> None:
        for seq in list(self.running):
            if seq.state != "running":
                continue  # preempted earlier in this loop
            while not self.cache.grow(seq.blocks, len(seq.token_ids)):
                victim = self.running[-1]
                self._preempt(victim)
                if victim is seq:
                    break
            else:
                seq.committed = self.cache.commit(seq.blocks, seq.block_hashes, seq.committed)

    def _preempt(self, seq: Sequence) -> None:
        """Free a running sequence's blocks and requeue it first; it recomputes its tokens later."""
        self.running.remove(seq)
        self.cache.free(seq.blocks)
        seq.blocks = []
        seq.committed = 0
        seq.state = "waiting"
        self.waiting.appendleft(seq)
        self.metrics.preemptions += 1

    def _admit(self) -> int:
        """Admit waiting sequences; return the prompt tokens they must prefill."""
        cfg = self.config
        budget = cfg.max_num_batched_tokens - len(self.running)
        prefill_tokens = 0
        admitted_any = False
        while self.waiting and len(self.running) < cfg.max_num_seqs:
            seq = self.waiting[0]
            num_tokens = len(seq.token_ids)
            # Like vLLM, the last prompt token is always computed: it yields the first output's logits.
            hits = self.cache.count_hits(seq.block_hashes, (num_tokens - 1) // cfg.block_size)
            uncached = num_tokens - hits * cfg.block_size
            if admitted_any and prefill_tokens + uncached > budget:
                break
            blocks = self.cache.allocate(seq.block_hashes, hits, num_tokens)
            if blocks is None:
                break
            self.waiting.popleft()
            seq.blocks = blocks
            seq.committed = self.cache.commit(blocks, seq.block_hashes, hits)
            seq.state = "running"
            self.running.append(seq)
            if seq.cached_tokens is None:  # first admission, not a recompute after preemption
                seq.cached_tokens = hits * cfg.block_size
                self.metrics.prompt_tokens += seq.prompt_len
            self.metrics.record_admission(num_tokens, hits * cfg.block_size)
            prefill_tokens += uncached
            admitted_any = True
        return prefill_tokens
