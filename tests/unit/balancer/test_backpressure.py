"""Admission: a bounded FIFO wait for a free worker slot, with a deadline."""

from __future__ import annotations

import asyncio

import pytest

from gllm.balancer.backpressure import Admission, QueueFull


async def settle() -> None:
    """Let every ready task run (a few loop turns, no wall-clock wait)."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.unit
class TestWakeOrder:
    """notify() wakes the longest waiter first, one per call."""

    def test_fifo(self) -> None:
        """Three waiters are woken in arrival order."""

        async def scenario() -> list[int]:
            admission = Admission(max_queue=10, timeout=30.0)
            woken: list[int] = []

            async def wait(i: int) -> None:
                assert await admission.wait()
                woken.append(i)

            tasks = []
            for i in range(3):
                tasks.append(asyncio.create_task(wait(i)))
                await settle()  # arrival order is the order of creation
            assert len(admission) == 3
            for expected in range(1, 4):
                admission.notify()
                await settle()
                assert len(woken) == expected
            await asyncio.gather(*tasks)
            assert len(admission) == 0
            return woken

        assert asyncio.run(scenario()) == [0, 1, 2]

    def test_notify_without_waiters_is_harmless(self) -> None:
        """A freed slot with nobody waiting is a no-op (and not remembered for later)."""

        async def scenario() -> bool:
            admission = Admission(max_queue=10, timeout=0.05)
            admission.notify()
            return await admission.wait()

        assert asyncio.run(scenario()) is False

    def test_cancelled_waiter_is_skipped(self) -> None:
        """A waiter whose client went away (task cancelled) leaves the queue; the next one is woken."""

        async def scenario() -> None:
            admission = Admission(max_queue=10, timeout=30.0)
            first = asyncio.create_task(admission.wait())
            await settle()
            second = asyncio.create_task(admission.wait())
            await settle()
            first.cancel()
            await settle()
            assert len(admission) == 1
            admission.notify()
            assert await second is True

        asyncio.run(scenario())


@pytest.mark.unit
class TestDeadline:
    """A waiter not woken within the timeout gets False and leaves the queue."""

    def test_timeout_returns_false(self) -> None:
        """wait() gives up after `timeout` seconds."""

        async def scenario() -> tuple[bool, int]:
            admission = Admission(max_queue=10, timeout=0.05)
            return await admission.wait(), len(admission)

        assert asyncio.run(scenario()) == (False, 0)

    def test_waited_total_counts_every_waiter(self) -> None:
        """waited_total counts requests that had to queue, whatever their outcome."""

        async def scenario() -> int:
            admission = Admission(max_queue=10, timeout=0.02)
            await asyncio.gather(admission.wait(), admission.wait())
            return admission.waited_total

        assert asyncio.run(scenario()) == 2


@pytest.mark.unit
class TestBound:
    """Beyond max_queue waiters, wait() raises QueueFull at once."""

    def test_queue_full(self) -> None:
        """With two waiting and a bound of two, the third is refused; after one leaves there is room."""

        async def scenario() -> None:
            admission = Admission(max_queue=2, timeout=30.0)
            waiters = [asyncio.create_task(admission.wait()) for _ in range(2)]
            await settle()
            with pytest.raises(QueueFull, match="2 requests are already waiting"):
                await admission.wait()
            admission.notify()
            assert await waiters[0] is True
            third = asyncio.create_task(admission.wait())
            await settle()
            assert len(admission) == 2
            admission.notify()
            admission.notify()
            assert list(await asyncio.gather(waiters[1], third)) == [True, True]

        asyncio.run(scenario())

    def test_zero_queue_refuses_everything(self) -> None:
        """max_queue=0 means no waiting at all: every saturated request is refused."""

        async def scenario() -> None:
            with pytest.raises(QueueFull):
                await Admission(max_queue=0, timeout=1.0).wait()

        asyncio.run(scenario())


@pytest.mark.unit
class TestNewcomers:
    """A freed slot belongs to the longest waiter, even before it runs."""

    def test_busy_until_the_woken_waiter_runs(self) -> None:
        """Between its wake-up and its resumption the woken waiter still holds the queue."""

        async def scenario() -> None:
            admission = Admission(max_queue=10, timeout=30)
            first = asyncio.ensure_future(admission.wait())
            await asyncio.sleep(0)
            assert admission.busy
            admission.notify()
            assert admission.busy  # woken, not resumed: a newcomer must queue behind it
            assert await first
            assert not admission.busy

        asyncio.run(scenario())

    def test_woken_waiter_that_leaves_passes_the_slot_on(self) -> None:
        """A waiter cancelled after its wake-up hands the slot to the next one."""

        async def scenario() -> None:
            admission = Admission(max_queue=10, timeout=30)
            first = asyncio.ensure_future(admission.wait())
            second = asyncio.ensure_future(admission.wait())
            await asyncio.sleep(0)
            admission.notify()
            first.cancel()
            assert await second
            assert not admission.busy

        asyncio.run(scenario())
