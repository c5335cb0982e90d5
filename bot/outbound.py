"""The outbox sender: after a turn commits (step 9 of the message's path), texts go out here.

Claims due outbox rows, sends them through a gateway (Twilio or local) under a per-sender
token-bucket rate limit, and records results: sent rows in batches, retryable failures with
exponential backoff and jitter, permanent failures once (21610 also opts the fan out, in the
store). Storage is reached only through the `OutboxStore` protocol below.

Crash recovery: a sender killed mid-batch leaves rows `sending`. On start and every
`recover_interval_s`, rows claimed more than `recover_grace_s` ago are looked up at the provider:
found -> sent with its SID; not found -> queued again. That is safe because a live sender never
starts a send later than `lease_s` after its claim and a request lasts at most the gateway's
timeout, so after the grace period nothing of that claim can still reach the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.errors import PermanentSendError, RetryableSendError
from bot.messages import DeliveryReport

log = logging.getLogger(__name__)

DEFAULT_SENDER = ""  # bucket key for rows without an explicit sender (default number/service)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One claimed outbox row. `attempts` counts tries including this one (claim adds one)."""

    id: int
    message_id: int
    contact_id: int | None
    to: str
    sender: str | None
    body: str
    media_urls: tuple[str, ...]
    attempts: int
    kind: str
    claimed_at: datetime | None = None  # set on rows handed to crash recovery


@dataclass(frozen=True, slots=True)
class SendResult:
    sid: str
    status: str
    segments: int
    encoding: str | None = None


class OutboxStore(Protocol):
    async def claim_outbox(self, limit: int) -> list[OutboxItem]:
        """Due rows (queued, not_before <= now) -> sending with attempts + 1, exactly once across
        processes; rows to opted-out fans are cancelled here, except kind == "compliance"."""
        ...

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        """(outbox id, provider sid, segments, encoding) for each sent row."""
        ...

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None: ...

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        """Permanent failure; 21610 also opts the fan out (the store decides)."""
        ...

    async def stale_sending(self, older_than_s: float, limit: int = 500) -> list[OutboxItem]:
        """Rows `sending` since a claim older than `older_than_s`, with `claimed_at` set."""
        ...

    async def settle_sending(
        self, lookups: Sequence[tuple[OutboxItem, Sequence[SendResult]]]
    ) -> tuple[int, int]:
        """Each stale row with the provider's matches: -> (marked sent, queued again)."""
        ...

    async def apply_delivery_report(self, report: DeliveryReport) -> bool: ...


class Gateway(Protocol):
    timeout: float  # the longest a send can take; bounds how long a claim can be in flight

    async def send(self, item: OutboxItem) -> SendResult: ...

    async def lookup(self, item: OutboxItem) -> list[SendResult]:
        """Messages the provider accepted for this row since `item.claimed_at`, oldest first.

        Raises RetryableSendError when the provider cannot say: the row then stays in doubt."""
        ...


@dataclass(frozen=True, slots=True)
class Recovery:
    """What one crash-recovery pass did."""

    stale: int
    sent: int
    requeued: int
    in_doubt: int  # lookups that failed: left `sending` for the next pass


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

    async def acquire(self) -> None:
        wait = self.take()
        if wait > 0:
            await asyncio.sleep(wait)


class OutboundSender:
    """Sends due outbox rows; one per process is enough (claims are exclusive across processes)."""

    def __init__(
        self,
        store: OutboxStore,
        gateway: Gateway,
        *,
        rate_per_second: float,
        batch_size: int = 500,  # large claims: on a queue of a million, small ones cost more than sends
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        rates: Mapping[str, float] | None = None,
        poll_interval: float = 1.0,
        lanes: int = 4,
        lease_s: float = 30.0,
        recover_grace_s: float | None = None,
        recover_interval_s: float = 60.0,
        wake_gap_s: float = 0.05,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.rate_per_second = rate_per_second
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.lanes = lanes  # concurrent claim->send->record loops, so batches overlap
        self.lease_s = lease_s  # a claimed row not started within this is left to recovery
        timeout = getattr(gateway, "timeout", 10.0)
        # after the grace period no send of the claim can still be on its way to the provider
        self.recover_grace_s = (
            recover_grace_s if recover_grace_s is not None else 2 * (lease_s + timeout)
        )
        if self.recover_grace_s <= lease_s + timeout:
            raise ValueError("recover_grace_s must exceed lease_s + the gateway's timeout")
        self.recover_interval_s = recover_interval_s
        self.wake_gap_s = wake_gap_s
        self._empty_at = -1e9  # loop time of the last claim that found nothing
        self._rates = dict(rates or {})
        self._buckets: dict[str, TokenBucket] = {}
        self._wake = asyncio.Event()
        self._random = random.Random()
        self.counts = {"sent": 0, "retried": 0, "failed": 0, "expired": 0}

    def notify(self) -> None:
        """A turn committed outbox rows: wake the loop now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Settle what a dead sender left, then send until `stop_event` is set; finishes the
        batches in flight before returning."""
        await asyncio.gather(
            self._recovering(stop_event), *(self._lane(stop_event) for _ in range(self.lanes))
        )

    async def _recovering(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            try:
                done = await self.recover()
            except Exception:  # top of a background task: log, try again next interval
                log.exception("outbox recovery failed")
            else:
                if done.requeued:
                    self.notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), self.recover_interval_s)

    async def _lane(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            try:
                claimed = await self.send_batch()
            except Exception:  # top of a background task: log, back off, keep going
                log.exception("outbox batch failed")
                claimed = 0
            if claimed == 0:
                await self._idle(stop_event)

    async def _idle(self, stop_event: asyncio.Event) -> None:
        """Wait for a wake-up or the poll interval. One wake-up rouses one lane, not all: every
        committed turn notifies, and N lanes claiming an empty outbox cost N database trips."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_interval
        while not stop_event.is_set():
            if self._wake.is_set():
                self._wake.clear()  # this lane takes the wake-up; the others keep waiting
                # wake-ups come with every turn: claim an empty outbox at most every gap
                gap = self._empty_at + self.wake_gap_s - loop.time()
                if gap > 0:
                    await asyncio.sleep(gap)
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            waits = [asyncio.ensure_future(self._wake.wait()),
                     asyncio.ensure_future(stop_event.wait())]  # fmt: skip
            try:
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def drain(self) -> int:
        """Send everything due now (retries due later stay queued); return rows handled."""
        total = 0
        while claimed := await self.send_batch():
            total += claimed
        return total

    async def send_batch(self) -> int:
        """Claim one batch, send it concurrently, record the results; return the rows claimed."""
        size = self._claim_size()
        items = await self.store.claim_outbox(size)
        if not items:
            self._empty_at = asyncio.get_running_loop().time()
            return 0
        if len(items) == size:
            self._wake.set()  # a full batch: there may be more, rouse another lane
        deadline = time.monotonic() + self.lease_s
        outcomes = await asyncio.gather(*[self._send_one(item, deadline) for item in items])
        sent = [o for o in outcomes if o is not None]
        if sent:
            await self.store.outbox_sent(sent)
            self.counts["sent"] += len(sent)
        return len(items)

    def _claim_size(self) -> int:
        # no more than the rate limit lets out well within the lease, across all lanes
        slowest = min([self.rate_per_second, *self._rates.values()])
        return max(1, min(self.batch_size, int(slowest * self.lease_s / (2 * self.lanes))))

    async def _send_one(
        self, item: OutboxItem, deadline: float
    ) -> tuple[int, str, int, str] | None:
        await self._bucket(item.sender).acquire()
        if time.monotonic() > deadline:
            # too late to start: recovery may already count this claim as dead. Left `sending`,
            # recovery finds it was never accepted and queues it again.
            self.counts["expired"] += 1
            return None
        try:
            result = await self.gateway.send(item)
        except RetryableSendError as exc:
            if exc.in_doubt and (hits := await self._lookup(item)):
                found = hits[0]  # it got through after all: record it, never send it again
                return (item.id, found.sid, found.segments, found.encoding or "")
            await self._retry_or_fail(item, exc)
            return None
        except PermanentSendError as exc:
            log.warning("outbox %s failed permanently (code %s)", item.id, exc.code)
            await self.store.outbox_failed(item.id, exc.code, str(exc))
            self.counts["failed"] += 1
            return None
        except Exception as exc:  # a bug below us must not lose the row: retry it later
            log.exception("outbox %s: unexpected send error", item.id)
            await self._retry_or_fail(item, RetryableSendError(type(exc).__name__))
            return None
        return (item.id, result.sid, result.segments, result.encoding or "")

    async def recover(self, grace_s: float | None = None) -> Recovery:
        """Settle rows left `sending` by a dead sender (see the module docstring)."""
        grace = self.recover_grace_s if grace_s is None else grace_s
        stale = await self.store.stale_sending(grace)
        if not stale:
            return Recovery(0, 0, 0, 0)
        found = await asyncio.gather(*[self._lookup(item) for item in stale])
        known = [(item, hits) for item, hits in zip(stale, found, strict=True) if hits is not None]
        sent, requeued = await self.store.settle_sending(known)
        done = Recovery(len(stale), sent, requeued, len(stale) - len(known))
        log.info("outbox recovery: %s", done)
        return done

    async def _lookup(self, item: OutboxItem) -> list[SendResult] | None:
        try:
            return await self.gateway.lookup(item)
        except RetryableSendError as exc:
            log.warning("outbox %s: provider lookup failed (%s); still in doubt", item.id, exc)
            return None

    async def _retry_or_fail(self, item: OutboxItem, exc: RetryableSendError) -> None:
        if item.attempts >= self.max_attempts:
            log.warning("outbox %s gave up after %d attempts", item.id, item.attempts)
            await self.store.outbox_failed(item.id, exc.code, f"gave up: {exc}")
            self.counts["failed"] += 1
            return
        delay = self.backoff(max(item.attempts - 1, 0), exc.retry_after)
        await self.store.outbox_retry(item.id, delay, str(exc))
        self.counts["retried"] += 1

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential backoff with equal jitter, never sooner than the provider's Retry-After."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempts))
        delay = self._random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def _bucket(self, sender: str | None) -> TokenBucket:
        key = sender or DEFAULT_SENDER
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rates.get(key, self.rate_per_second))
            self._buckets[key] = bucket
        return bucket
