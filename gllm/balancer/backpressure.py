"""Admission when every worker is at its in-flight cap: a bounded FIFO wait with a deadline."""

from __future__ import annotations

import asyncio
from collections import deque


class QueueFull(Exception):
    """The wait queue is at its bound."""


class Admission:
    """Requests wait here, first come first served, until a worker frees a slot or their deadline passes."""

    def __init__(self, max_queue: int, timeout: float) -> None:
        self.max_queue = max_queue
        self.timeout = timeout
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.waited_total = 0

    def __len__(self) -> int:
        return len(self._waiters)

    async def wait(self) -> bool:
        """Wait for a freed slot; False when the deadline passed first. Raises QueueFull at the bound."""
        if len(self._waiters) >= self.max_queue:
            raise QueueFull(f"{len(self._waiters)} requests are already waiting for a worker")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.waited_total += 1
        try:
            async with asyncio.timeout(self.timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            if not waiter.done():
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
                return
