"""Pure pieces of the reliability layer: circuit breaker, limiter, keys."""

from __future__ import annotations

import asyncio

import pytest

from proxy.auth import KeyRing
from proxy.breaker import CircuitBreaker
from proxy.errors import QueueFull, QueueTimeout, Unauthorized
from proxy.limits import Limiter


def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    b = CircuitBreaker(threshold=3, cooldown=10)
    for t in (0.0, 1.0):
        b.failure(t)
        assert b.state(t) == "closed"
    b.success()
    for t in (2.0, 3.0, 4.0):
        b.failure(t)
    assert b.state(5.0) == "open" and not b.available(5.0) and not b.allow(5.0)
    assert b.state(14.0) == "half-open"
    assert b.available(14.0)
    assert b.allow(14.0) is True  # one trial
    assert b.allow(14.1) is False
    b.failure(15.0)  # trial failed: open again
    assert b.state(16.0) == "open"
    assert b.allow(25.5)
    b.success()
    assert b.state(25.6) == "closed"


def test_limiter_fifo_queue_full_and_timeout() -> None:
    async def main() -> None:
        lim = Limiter(max_concurrency=1, max_queue=2, queue_timeout=0.2)
        await lim.acquire()
        order: list[int] = []

        async def worker(i: int) -> None:
            await lim.acquire()
            order.append(i)
            await asyncio.sleep(0.01)
            lim.release()

        tasks = [asyncio.create_task(worker(i)) for i in range(2)]
        await asyncio.sleep(0.01)
        assert lim.queued == 2 and lim.busy()
        with pytest.raises(QueueFull):
            await lim.acquire()
        lim.release()
        await asyncio.gather(*tasks)
        assert order == [0, 1]
        assert lim.active == 0 and lim.queued == 0
        await lim.acquire()
        with pytest.raises(QueueTimeout):
            await lim.acquire()
        assert lim.queued == 0
        lim.release()
        assert lim.active == 0

    asyncio.run(main())


def test_limiter_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> None:
        lim = Limiter(max_concurrency=1, max_queue=5, queue_timeout=5)
        await lim.acquire()
        waiter = asyncio.create_task(lim.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lim.release()
        assert lim.active == 0 and lim.queued == 0

    asyncio.run(main())


def test_keyring() -> None:
    ring = KeyRing([b"k1", b"k2"], protect_admin=True, protect_metrics=False)
    ring.check([(b"authorization", b"Bearer k2")])
    with pytest.raises(Unauthorized, match="invalid API key"):
        ring.check([(b"authorization", b"Bearer nope")])
    with pytest.raises(Unauthorized, match="missing API key"):
        ring.check([(b"x-other", b"1")])
    KeyRing([], protect_admin=True, protect_metrics=False).check([])
