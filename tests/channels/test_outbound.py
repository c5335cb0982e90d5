"""OutboundSender against the local Twilio server: storms, permanent errors, backoff, waking up."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.outbound import OutboundSender
from bot.pacing import TokenBucket

from .conftest import LocalTwilio
from .memory_store import MemoryOutboxStore

FANS = [f"+1415555{n:04d}" for n in range(40)]


async def drain_and_settle(store: MemoryOutboxStore, sender: OutboundSender) -> None:
    """Send, and look up what is in doubt (a dropped connection may have been accepted), until
    every row is settled; bounded."""
    for _ in range(100):
        await sender.drain()
        await sender.settle_in_doubt()
        if not store.pending():
            return


def fill(store: MemoryOutboxStore, n: int) -> None:
    for i in range(n):
        store.add(FANS[i % len(FANS)], f"message {i}")


async def test_storm_of_429_500_and_drops_delivers_each_message_exactly_once(
    twilio: LocalTwilio, gateway
) -> None:
    store = MemoryOutboxStore()
    fill(store, 300)
    twilio.server.set_faults(rate_429=0.25, rate_500=0.15, rate_drop=0.1, retry_after=0)
    sender = OutboundSender(
        store, gateway, rate_per_second=100_000, batch_size=50, max_attempts=60, backoff_base=0,
        lookup_base_s=0, max_lookups=60, late_accept_s=0,  # this server never accepts late
    )  # fmt: skip

    await drain_and_settle(store, sender)

    assert store.pending() == []
    assert {r.status for r in store.rows.values()} == {"sent"}
    bodies = Counter(m["body"] for m in twilio.server.accepted())
    assert bodies == Counter(f"message {i}" for i in range(300))  # every one, exactly once
    by_sid = {m["sid"]: m for m in twilio.server.accepted()}
    for row in store.rows.values():
        assert by_sid[row.sid]["body"] == row.body and by_sid[row.sid]["to"] == row.to
    assert sender.counts["retried"] > 100  # the storm really happened
    # every try reached the server (lookups after dropped connections come on top)
    assert twilio.server.requests >= 300 + sender.counts["retried"]


async def test_permanent_errors_are_recorded_once_and_21610_opts_out(
    twilio: LocalTwilio, gateway
) -> None:
    store = MemoryOutboxStore()
    gone, bad, ok = FANS[0], FANS[1], FANS[2]
    first = store.add(gone, "one")
    invalid = store.add(bad, "two")
    fine = store.add(ok, "three")
    twilio.server.set_faults(permanent={gone: 21610, bad: 21211})
    sender = OutboundSender(store, gateway, rate_per_second=1000, backoff_base=0)

    await sender.drain()
    later = store.add(gone, "after opt-out")
    await sender.drain()

    assert (first.status, first.code) == ("failed", 21610)
    assert (invalid.status, invalid.code) == ("failed", 21211)
    assert fine.status == "sent" and first.attempts == 1
    assert store.opted_out == {gone}
    assert later.status == "cancelled"  # the store refuses to hand it out again
    assert [m["body"] for m in twilio.server.accepted()] == ["three"]


async def test_gives_up_after_max_attempts(twilio: LocalTwilio, gateway) -> None:
    store = MemoryOutboxStore()
    row = store.add(FANS[0], "doomed")
    twilio.server.set_faults(rate_500=1.0)
    sender = OutboundSender(store, gateway, rate_per_second=1000, max_attempts=3, backoff_base=0)

    await sender.drain()

    assert (row.status, row.code, row.attempts) == ("failed", 20500, 3)
    assert twilio.server.requests == 3
    assert row.error and row.error.startswith("gave up")


async def test_retry_after_is_honoured_and_retry_waits(twilio: LocalTwilio, gateway) -> None:
    store = MemoryOutboxStore()
    row = store.add(FANS[0], "later")
    twilio.server.set_faults(count_429=1, retry_after=30)
    sender = OutboundSender(store, gateway, rate_per_second=1000, backoff_base=0.5)

    handled = await sender.drain()

    assert handled == 1  # the retry is not due yet, so drain stops
    assert row.status == "queued" and row.attempts == 1
    assert row.retry_delays[0] >= 30
    assert twilio.server.accepted() == []


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    sender = OutboundSender(
        MemoryOutboxStore(), gateway=None, rate_per_second=1, backoff_base=1.0, backoff_max=60
    )  # type: ignore[arg-type]
    for attempts in range(5):
        delay = sender.backoff(attempts)
        assert 2**attempts / 2 <= delay <= 2**attempts
    assert sender.backoff(20) <= 60
    assert sender.backoff(0, retry_after=12) >= 12
    assert len({sender.backoff(6) for _ in range(20)}) > 1  # jitter spreads a thundering herd


def test_token_bucket_spaces_sends_at_the_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=10, burst=2, clock=lambda: now[0])
    waits = [bucket.take() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2, 0.3])
    now[0] += 1.0  # a second later the debt is paid and the burst refilled
    assert bucket.take() == 0


async def test_buckets_are_per_sender_number(gateway) -> None:
    sender = OutboundSender(
        MemoryOutboxStore(), gateway, rate_per_second=5, rates={"+14155550001": 50}
    )
    assert sender.rule("+14155550001").per_second == 50
    assert sender.rule("+14155550002").per_second == 1  # a US long code's default
    assert sender.rule("+15005550006").per_second == 5  # no kind (a test number): the default
    assert sender.pacer._bucket("+14155550001").rate == 50


class NotifyingStore(MemoryOutboxStore):
    """Sets `done` when every row has reached a final state, so the test needs no sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()
        self.idle = asyncio.Event()
        self.empty_claims = 0

    async def reserve_outbox(self, limit: int, lease_s: float):
        items = await super().reserve_outbox(limit, lease_s)
        self.empty_claims += not items
        if self.empty_claims >= 2:  # both lanes found nothing and went to sleep
            self.idle.set()
        return items

    async def outbox_sent(self, results) -> None:
        await super().outbox_sent(results)
        if self.rows and not self.pending():
            self.done.set()


async def test_run_is_woken_by_notify_and_stops_on_the_event(twilio: LocalTwilio, gateway) -> None:
    store = NotifyingStore()
    sender = OutboundSender(store, gateway, rate_per_second=1000, poll_interval=3600, lanes=2)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.wait_for(store.idle.wait(), timeout=10)
    claims_before = store.claims

    fill(store, 5)
    sender.notify()  # without this the hour-long poll would never pick the rows up
    await asyncio.wait_for(store.done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)

    assert store.claims > claims_before
    assert len(twilio.server.accepted()) == 5


class HeldRecordStore(MemoryOutboxStore):
    """The first batch's results wait for `release` before they are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved = asyncio.Event()
        self.found_empty = asyncio.Event()
        self.release = asyncio.Event()

    async def reserve_outbox(self, limit: int, lease_s: float):
        items = await super().reserve_outbox(limit, lease_s)
        (self.reserved if items else self.found_empty).set()
        return items

    async def outbox_sent(self, results) -> None:
        await self.release.wait()
        await super().outbox_sent(results)


async def test_drain_waits_for_the_batch_a_running_lane_reserved(
    twilio: LocalTwilio, gateway
) -> None:
    """drain() after a commit must not return while the background lane still holds the rows
    (they are hidden from drain's own claim): callers read the outcome right after it."""
    store = HeldRecordStore()
    fill(store, 3)
    sender = OutboundSender(store, gateway, rate_per_second=1000, poll_interval=3600)
    lane = asyncio.create_task(sender.send_batch())  # the server's lane took the rows
    await asyncio.wait_for(store.reserved.wait(), timeout=10)
    drained = asyncio.create_task(sender.drain())
    await asyncio.wait_for(store.found_empty.wait(), timeout=10)  # the lane holds every row
    for _ in range(20):  # drain has every chance to return (it must not)
        await asyncio.sleep(0)
    assert not drained.done(), "drain returned while a lane's batch was in flight"
    store.release.set()
    await asyncio.wait_for(asyncio.gather(lane, drained), timeout=10)
    assert store.pending() == [] and len(twilio.server.accepted()) == 3
