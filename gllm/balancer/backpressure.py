"""Admission when every worker is at its in-flight cap: a bounded first-come-first-served wait with a deadline."""

from __future__ import annotations

import asyncio
from collections import deque


class QueueFull(Exception):
    """The wait queue is at its bound."""


class Admission:
    """Requests wait here in arrival order until a worker frees a slot or their own deadline passes.

    A freed slot wakes the longest waiter. Newcomers queue behind waiters (and behind a waiter woken but not yet
    running), so a request arriving just as a slot frees cannot take it from one that has waited.
    """

    def __init__(self, max_queue: int, timeout: float) -> None:
        self.max_queue = max_queue
        self.timeout = timeout
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._waking = 0  # waiters given a slot that have not resumed yet
        self.waited_total = 0

    def __len__(self) -> int:
        return len(self._waiters)

    @property
    def busy(self) -> bool:
        """True when someone is waiting (or was just woken): a newcomer must queue behind them."""
        return bool(self._waiters) or self._waking > 0

    def deadline(self) -> float:
        """The loop time by which a request that starts waiting now must have a slot."""
        return asyncio.get_running_loop().time() + self.timeout

    async def wait(self, deadline: float | None = None) -> bool:
        """Wait for a freed slot until `deadline` (loop time; default: `timeout` from now); False when it passed.

        Raises QueueFull at the bound.
        """
        if deadline is None:
            deadline = self.deadline()
        if len(self._waiters) >= self.max_queue:
            raise QueueFull(f"{len(self._waiters)} requests are already waiting for a worker")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.waited_total += 1
        admitted = False
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
            admitted = True
            return True
        except TimeoutError:
            return False
        finally:
            if waiter.done() and not waiter.cancelled():
                self._waking -= 1
                if not admitted:
                    self.notify()  # woken, but leaving (deadline or client gone): pass the slot on
            else:
                waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def notify(self) -> None:
        """A slot was freed: wake the longest waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking += 1
                return
