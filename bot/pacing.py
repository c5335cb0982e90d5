"""Pacing for the outbox sender (step 10): a token bucket per sending number, and the pool of
free connections to the provider that each send's claim waits for.

Both are taken *before* a row is claimed, so a claimed row goes to the provider at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, bursts up to `burst`; acquire() waits for a token."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> float:
        """Take a token now (possibly going into debt); return how long to wait for it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def ready(self) -> bool:
        """A token is there now (taking it would not wait)."""
        now = self._clock()
        return min(self.burst, self._tokens + (now - self._at) * self.rate) >= 1

    def give_back(self) -> None:
        """Return a token that was taken but not used (its row was not claimed)."""
        self._tokens = min(self.burst, self._tokens + 1)

    async def acquire(self) -> None:
        wait = self.take()
        if wait > 0:
            await asyncio.sleep(wait)


class Connections:
    """Free connections to the provider, taken in groups: `take` waits until half of them
    (or as many as are asked for, if fewer) are free, then takes up to what is asked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._group = max(1, size // 2)
        self._freed = asyncio.Event()

    async def take(self, wanted: int) -> int:
        need = min(wanted, self._group)
        while self.free < need:
            self._freed.clear()
            await self._freed.wait()
        taken = min(self.free, wanted)
        self.free -= taken
        return taken

    def release(self, count: int) -> None:
        self.free += count
        if self.free >= self._group:  # waking every waiting lane per freed connection costs
            self._freed.set()
