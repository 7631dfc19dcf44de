"""Per-backend concurrency limit with a bounded FIFO queue.

Local model servers handle one or a few requests at a time; sending more
only makes every request slower. A `Limiter` lets `max_concurrency`
requests through, queues up to `max_queue` more in arrival order, and
refuses the rest at once (`QueueFull`) so the router can fall back or the
client can retry later. A queued request that waits longer than
`queue_timeout` gets `QueueTimeout`.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Limiter"]


from .errors import QueueFull, QueueTimeout


class Limiter:
    def __init__(self, max_concurrency: int | None, max_queue: int, queue_timeout: float) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def busy(self) -> bool:
        """True when a new request could neither run nor queue."""
        if self.max_concurrency is None:
            return False
        return self.active >= self.max_concurrency and len(self._waiters) >= self.max_queue

    async def acquire(self) -> None:
        if self.max_concurrency is None or (
            self.active < self.max_concurrency and not self._waiters
        ):
            self.active += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise QueueFull
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                # granted at the last moment: hand the slot on
                self.release()
            else:
                waiter.cancel()
                self._remove(waiter)
            raise QueueTimeout from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                waiter.cancel()
                self._remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in line
                return
        self.active -= 1

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
