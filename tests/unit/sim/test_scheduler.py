"""Continuous batching: admission, step durations, prefix hits, finishing, preemption, aborts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gllm.sim.config import SimConfig
from gllm.sim.metrics import EngineMetrics
from gllm.sim.scheduler import Scheduler, Sequence, TokenEvent
from gllm.sim.textgen import OutputText, TokenSampler

BASE, PER_SEQ, PREFILL = 0.01, 0.001, 0.0001


def make_scheduler(**overrides: Any) -> Scheduler:
    """A scheduler with small, round parameters."""
    params: dict[str, Any] = {
        "decode_base_step_s": BASE,
        "decode_per_seq_step_s": PER_SEQ,
        "prefill_time_per_token_s": PREFILL,
        "block_size": 16,
        "num_blocks": 64,
        "max_model_len": 512,
    }
    config = SimConfig(**{**params, **overrides})
    return Scheduler(config, EngineMetrics(config.name))


def make_seq(
    scheduler: Scheduler, prompt: list[int], max_tokens: int = 4, stop: tuple[str, ...] = (), **kw: Any
) -> Sequence:
    """A sequence with its own event queue."""
    return Sequence(
        index=0,
        prompt_ids=prompt,
        max_tokens=max_tokens,
        sampler=TokenSampler(1, leading_space=True),
        text=OutputText(stop),
        sink=asyncio.Queue(),
        arrival=0.0,
        block_size=scheduler.config.block_size,
        **kw,
    )


def drain(seq: Sequence) -> list[TokenEvent]:
    """Events queued for a sequence so far."""
    events = []
    while not seq.sink.empty():
        events.append(seq.sink.get_nowait())
    return events


def run_to_end(scheduler: Scheduler, limit: int = 1000) -> int:
    """Step until idle; return the number of steps."""
    steps = 0
    while scheduler.running or scheduler.waiting:
        scheduler.schedule()
        scheduler.emit(float(steps))
        steps += 1
        assert steps < limit
    return steps


@pytest.mark.unit
class TestAdmission:
    """Waiting sequences enter the batch while seats, budget and blocks allow."""

    def test_max_num_seqs_bounds_the_batch(self) -> None:
        """Beyond max_num_seqs, requests wait."""
        scheduler = make_scheduler(max_num_seqs=2)
        for i in range(3):
            scheduler.add(make_seq(scheduler, [i] * 10))
        scheduler.schedule()
        assert (len(scheduler.running), len(scheduler.waiting)) == (2, 1)

    def test_token_budget_spreads_prefills(self) -> None:
        """Two 16-token prompts do not fit a 20-token step budget together."""
        scheduler = make_scheduler(max_num_batched_tokens=20)
        scheduler.add(make_seq(scheduler, [1] * 16))
        scheduler.add(make_seq(scheduler, [2] * 16))
        scheduler.schedule()
        assert len(scheduler.running) == 1
        scheduler.emit(0.0)
        scheduler.schedule()
        assert len(scheduler.running) == 2

    def test_kv_capacity_blocks_admission(self) -> None:
        """A prompt waits when its blocks are not free."""
        scheduler = make_scheduler(num_blocks=4, max_model_len=64)
        scheduler.add(make_seq(scheduler, [1] * 48))
        scheduler.add(make_seq(scheduler, [2] * 32))
        scheduler.schedule()
        assert (len(scheduler.running), len(scheduler.waiting)) == (1, 1)


@pytest.mark.unit
class TestStepDuration:
    """A step costs base + per running sequence + per uncached prompt token."""

    def test_decode_grows_with_batch(self) -> None:
        """Decode-only steps with 1 and 3 running sequences."""
        scheduler = make_scheduler(prefill_time_per_token_s=0.0)
        scheduler.add(make_seq(scheduler, [1] * 4, max_tokens=10))
        assert scheduler.schedule() == pytest.approx(BASE + PER_SEQ)
        scheduler.add(make_seq(scheduler, [2] * 4, max_tokens=10))
        scheduler.add(make_seq(scheduler, [3] * 4, max_tokens=10))
        scheduler.emit(0.0)
        assert scheduler.schedule() == pytest.approx(BASE + 3 * PER_SEQ)

    def test_prefill_charged_on_admission_only(self) -> None:
        """The prefill step is long; the next decode step is not."""
        scheduler = make_scheduler()
        scheduler.add(make_seq(scheduler, list(range(100)), max_tokens=5))
        assert scheduler.schedule() == pytest.approx(BASE + PER_SEQ + 100 * PREFILL)
        scheduler.emit(0.0)
        assert scheduler.schedule() == pytest.approx(BASE + PER_SEQ)

    def test_prefix_hit_skips_cached_blocks(self) -> None:
        """The same 64-token prompt again prefills only its last block (the last token is always computed)."""
        scheduler = make_scheduler()
        first = make_seq(scheduler, list(range(64)))
        scheduler.add(first)
        run_to_end(scheduler)
        second = make_seq(scheduler, list(range(64)))
        scheduler.add(second)
        assert scheduler.schedule() == pytest.approx(BASE + PER_SEQ + 16 * PREFILL)
        assert (first.cached_tokens, second.cached_tokens) == (0, 48)
        assert scheduler.metrics.prefix_cache_hits == 48
        assert scheduler.metrics.prefix_cache_queries == 128

    def test_generated_blocks_are_cached_for_the_next_turn(self) -> None:
        """Prompt + answer, resent as the next prompt, hits blocks filled during decode."""
        scheduler = make_scheduler()
        first = make_seq(scheduler, list(range(10)), max_tokens=40)
        scheduler.add(first)
        run_to_end(scheduler)
        follow_up = make_seq(scheduler, [*first.token_ids, 7, 7, 7])
        scheduler.add(follow_up)
        scheduler.schedule()
        assert follow_up.cached_tokens == 48


@pytest.mark.unit
class TestOutput:
    """Every step emits one token per running sequence until it finishes."""

    def test_length(self) -> None:
        """max_tokens tokens, the last event says length, blocks are freed."""
        scheduler = make_scheduler()
        seq = make_seq(scheduler, [1] * 20, max_tokens=5)
        scheduler.add(seq)
        assert run_to_end(scheduler) == 5
        events = drain(seq)
        assert [e.finish_reason for e in events] == [None] * 4 + ["length"]
        assert seq.generated == 5
        assert scheduler.cache.usage == 0.0
        assert scheduler.metrics.finished["length"] == 1
        assert scheduler.metrics.ttft.count == 1
        assert scheduler.metrics.e2e.count == 1

    def test_stop_string(self) -> None:
        """A stop string ends the sequence early with its stop_reason."""
        scheduler = make_scheduler()
        probe = make_seq(scheduler, [1] * 20, max_tokens=30)
        scheduler.add(probe)
        run_to_end(scheduler)
        word = probe.text.text.split()[3]
        seq = make_seq(scheduler, [1] * 20, max_tokens=30, stop=(word,))
        scheduler.add(seq)
        run_to_end(scheduler)
        last = drain(seq)[-1]
        assert (last.finish_reason, last.stop_reason) == ("stop", word)
        assert word not in seq.text.text

    def test_eos(self) -> None:
        """With eos_probability 1 a sequence ends after min_tokens."""
        scheduler = make_scheduler(eos_probability=1.0)
        seq = make_seq(scheduler, [1] * 4, max_tokens=10, min_tokens=2)
        scheduler.add(seq)
        assert run_to_end(scheduler) == 3
        assert drain(seq)[-1].finish_reason == "stop"

    def test_ignore_eos(self) -> None:
        """ignore_eos runs to max_tokens."""
        scheduler = make_scheduler(eos_probability=1.0)
        seq = make_seq(scheduler, [1] * 4, max_tokens=6, ignore_eos=True)
        scheduler.add(seq)
        assert run_to_end(scheduler) == 6


@pytest.mark.unit
class TestPreemptionAndAbort:
    """A full cache preempts the newest sequence; aborted sequences release everything."""

    def test_preemption_recomputes_and_finishes(self) -> None:
        """Two sequences that cannot both grow: one is preempted, both still finish."""
        scheduler = make_scheduler(num_blocks=4, max_model_len=64, max_num_seqs=4)
        first = make_seq(scheduler, [1] * 16, max_tokens=30)
        second = make_seq(scheduler, [2] * 16, max_tokens=30)
        scheduler.add(first)
        scheduler.add(second)
        run_to_end(scheduler)
        assert scheduler.metrics.preemptions >= 1
        assert first.generated == 30
        assert second.generated == 30
        assert scheduler.cache.usage == 0.0

    def test_abort_frees_blocks(self) -> None:
        """Aborting running and waiting sequences empties the engine."""
        scheduler = make_scheduler(max_num_seqs=1)
        running, waiting = make_seq(scheduler, [1] * 40), make_seq(scheduler, [2] * 40)
        scheduler.add(running)
        scheduler.add(waiting)
        scheduler.schedule()
        scheduler.abort(running, 1.0)
        scheduler.abort(waiting, 1.0)
        scheduler.abort(waiting, 1.0)  # twice is harmless
        assert not scheduler.running
        assert not scheduler.waiting
        assert scheduler.cache.usage == 0.0
        assert scheduler.metrics.finished["abort"] == 2

    def test_abort_all_sends_errors(self) -> None:
        """Sleep or shutdown ends every sequence with an error event."""
        scheduler = make_scheduler()
        seq = make_seq(scheduler, [1] * 8)
        scheduler.add(seq)
        scheduler.abort_all("gone", 0.0)
        assert drain(seq) == [TokenEvent(0, "", error="gone")]


@pytest.mark.unit
class TestLoop:
    """The asyncio loop steps in real time and idles when empty."""

    def test_run_streams_tokens(self) -> None:
        """Tokens arrive on the queue while the loop runs; the loop then idles."""

        async def scenario() -> list[TokenEvent]:
            scheduler = make_scheduler(decode_base_step_s=0.001, prefill_time_per_token_s=0.0)
            task = asyncio.create_task(scheduler.run())
            seq = make_seq(scheduler, [1] * 8, max_tokens=5)
            scheduler.add(seq)
            events = [await asyncio.wait_for(seq.sink.get(), 10)]
            while events[-1].finish_reason is None:
                events.append(await asyncio.wait_for(seq.sink.get(), 10))
            task.cancel()
            return events

        events = asyncio.run(scenario())
        assert "".join(e.text for e in events).split()
        assert events[-1].finish_reason == "length"
