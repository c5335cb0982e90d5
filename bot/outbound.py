"""The outbox sender: after a turn commits (step 9 of the message's path), texts go out here.

Each lane reserves a batch of due rows (they stay `queued`, hidden from other lanes for
`lease_s`), then for each send, in this order: waits for a free connection and a token of the
sender's rate limit, claims the row (`queued -> sending`, in one statement guarded by "the fan is
still subscribed, not suppressed, not erased"), and calls the gateway at once. So a STOP that
commits before the claim always wins, however long the row waited for its turn, and a row is
`sending` only while its request is on its way. A broadcast text outside its fan's quiet
hours is not claimed: the claim moves it to the window's next opening (`bot.storage.outbox`). Rows whose slots come up together are claimed
together, which keeps throughput. Results: sent rows in batches, retryable failures with
exponential backoff and jitter, permanent failures once (21610 also opts the fan out, in the
store). Storage is reached only through the `OutboxStore` protocol below.

In doubt: when the provider's answer to a send is lost (timeout, dropped connection) the send
is looked up at once; found -> sent. Otherwise the row goes `in_doubt` and is never sent again
blindly: the request may still be on its way and be accepted later (the provider keeps a
request it has received after our client gave up), so "not found" only counts once
`late_accept_s` has passed since the claim (default: the gateway's timeout + 60 s); until then
the row waits, and is looked up again at the end of that window. A lookup that fails is retried with backoff
(`lookup_base_s`, doubling); after `max_lookups` of them the row becomes `unknown`, for an
operator (`fanline outbox unknown`, metrics). So a send Twilio accepted, however late, is never
repeated, and one it never accepted is repeated only once a lookup after the window says so.

Crash recovery: a sender killed mid-batch leaves rows `sending`. On start and every
`recover_interval_s`, rows claimed more than `recover_grace_s` ago are looked up at the provider:
found -> sent with its SID; not found -> queued again; lookup failed -> `in_doubt`. That is safe
because a request starts right after its claim and lasts at most the gateway's timeout, so after
the grace period nothing of that claim can still reach the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot import metrics
from bot.errors import PermanentSendError, RetryableSendError
from bot.messages import DeliveryReport
from bot.pacing import (
    SLOW_CODES,
    Connections,
    Grant,
    LocalRates,
    RateRule,
    SharedRates,
    rule_for,
)
from bot.sms import count_segments

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
    claimed_at: datetime | None = None  # set on rows handed to crash recovery / lookups
    lookups: int = 0  # failed provider lookups so far (rows in doubt)


@dataclass(frozen=True, slots=True)
class SendResult:
    sid: str
    status: str
    segments: int
    encoding: str | None = None


class OutboxStore(Protocol):
    async def reserve_outbox(self, limit: int, lease_s: float) -> list[OutboxItem]:
        """Due rows (queued, not_before <= now), hidden from other reservations for `lease_s`;
        they stay `queued` (a STOP or a pause still reaches them). `attempts` is the token
        `claim_sends` checks, so a stale reservation can never claim a row retried since."""
        ...

    async def claim_sends(self, items: Sequence[OutboxItem]) -> list[OutboxItem]:
        """The guarded claim, one statement: reserved rows still `queued` with the same attempts
        whose fan is still subscribed, not suppressed, not erased -> sending, attempts + 1
        (kind "compliance" always goes: the STOP confirmation, HELP). Rows to fans who opted
        out meanwhile are cancelled with the reason. Returns the claimed rows."""
        ...

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        """(outbox id, provider sid, segments, encoding) for each sent row."""
        ...

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None: ...

    async def outbox_defer(self, rows: Sequence[tuple[int, int, float]], reason: str) -> None:
        """(outbox id, attempts, seconds) of reserved rows not sent now (their number's daily
        cap): still `queued`, due after the seconds; a row changed meanwhile is left alone."""
        ...

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        """Permanent failure; 21610 also opts the fan out (the store decides)."""
        ...

    async def outbox_in_doubt(
        self, item: OutboxItem, delay_s: float, error: str, *, give_up: bool = False
    ) -> None:
        """The provider could not say whether it has the send: `in_doubt`, looked up again
        after `delay_s` (lookups + 1), or `unknown` for good with `give_up`."""
        ...

    async def due_in_doubt(self, limit: int = 500) -> list[OutboxItem]:
        """`in_doubt` rows due for their next lookup, with `claimed_at` and `lookups` set."""
        ...

    async def uncertain_counts(self) -> dict[str, int]:
        """How many rows are `in_doubt` and `unknown` (for the metrics)."""
        ...

    async def stale_sending(self, older_than_s: float, limit: int = 500) -> list[OutboxItem]:
        """Rows `sending` since a claim older than `older_than_s`, with `claimed_at` set."""
        ...

    async def settle_sending(
        self, lookups: Sequence[tuple[OutboxItem, Sequence[SendResult]]]
    ) -> tuple[int, int]:
        """Each stale or in-doubt row with the provider's matches: -> (marked sent, queued again)."""
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
    in_doubt: int  # lookups that failed: `in_doubt`, looked up again later (or `unknown`)


class OutboundSender:
    """Sends due outbox rows; one per process is enough (claims are exclusive across processes)."""

    def __init__(
        self,
        store: OutboxStore,
        gateway: Gateway,
        *,
        rate_per_second: float,
        batch_size: int = 500,  # large reservations: on a queue of a million, small ones cost more
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        rates: Mapping[str, float | RateRule] | None = None,
        pacer: LocalRates | SharedRates | None = None,
        default_sender: str | None = None,  # the number / service of rows without a sender
        poll_interval: float = 1.0,
        lanes: int = 4,
        lease_s: float = 30.0,
        recover_grace_s: float | None = None,
        recover_interval_s: float = 60.0,
        wake_gap_s: float = 0.05,
        max_in_flight: int | None = None,
        lookup_base_s: float = 2.0,
        max_lookups: int = 6,
        late_accept_s: float | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.rate_per_second = rate_per_second
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.lanes = lanes  # concurrent reserve->claim->send->record loops, so batches overlap
        self.lease_s = lease_s  # a reservation not claimed within this goes back to the queue
        timeout = getattr(gateway, "timeout", 10.0)
        # how long after a claim its request may still be accepted: our timeout, then the
        # provider may still finish a request it received (0: a provider that never does)
        self.late_accept_s = timeout + 60.0 if late_accept_s is None else late_accept_s
        self._settles_after = timedelta(seconds=self.late_accept_s)
        # after the grace period no send of the claim can still be on its way to the provider
        self.recover_grace_s = (
            recover_grace_s
            if recover_grace_s is not None
            else 2 * (lease_s + timeout) + self.late_accept_s
        )
        if self.recover_grace_s <= lease_s + timeout:
            raise ValueError("recover_grace_s must exceed lease_s + the gateway's timeout")
        self.recover_interval_s = recover_interval_s
        self.wake_gap_s = wake_gap_s
        # a claimed row never waits for a connection: claims stop when all of them are busy
        in_flight = max_in_flight or getattr(gateway, "connections", None) or 100
        self._in_flight = Connections(in_flight)
        self.lookup_base_s = lookup_base_s
        self.max_lookups = max_lookups
        self._empty_at = -1e9  # loop time of the last claim that found nothing
        self._rules = {k: v if isinstance(v, RateRule) else RateRule(float(v))
                       for k, v in (rates or {}).items()}  # fmt: skip
        # the sender's rate per number: shared through the database (`SharedRates`, as the
        # server builds it) or, by default, a token bucket per number in this process
        self.default_sender = default_sender
        self._grants: dict[int, Grant] = {}  # outbox id -> its grant, until claimed or handed back
        self.pacer = pacer if pacer is not None else LocalRates(self.rule)
        self._wake = asyncio.Event()
        self._batches = 0  # batches this sender's lanes have reserved and not yet recorded
        self._quiet = asyncio.Condition()
        self._random = random.Random()
        self.counts = {"sent": 0, "retried": 0, "failed": 0, "expired": 0, "cancelled": 0,
                       "in_doubt": 0, "unknown": 0, "capped": 0}  # fmt: skip

    def notify(self) -> None:
        """A turn committed outbox rows: wake the loop now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Settle what a dead sender left, then send until `stop_event` is set; finishes the
        batches in flight before returning."""
        await asyncio.gather(
            self._recovering(stop_event),
            self._settling(stop_event),
            *(self._lane(stop_event) for _ in range(self.lanes)),
        )

    async def _recovering(self, stop_event: asyncio.Event) -> None:
        await self._every(self.recover, self.recover_interval_s, "outbox recovery", stop_event)

    async def _settling(self, stop_event: asyncio.Event) -> None:
        await self._every(
            self.settle_in_doubt, self.lookup_base_s / 2, "outbox lookups", stop_event
        )

    async def _every(
        self, job: Any, interval_s: float, what: str, stop_event: asyncio.Event
    ) -> None:
        """Run `job` every `interval_s` until stopped; wake the lanes when it re-queued rows."""
        while not stop_event.is_set():
            try:
                done = await job()
            except Exception:  # top of a background task: log, try again next interval
                log.exception("%s failed", what)
            else:
                if done.requeued:
                    self.notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), interval_s)

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
        """Send everything due now (retries due later stay queued); return rows handled.
        Also waits for the batches this sender's own lanes have in flight: a row a running lane
        reserved is hidden from this claim, and is not sent until that lane records it."""
        total = 0
        while True:
            while claimed := await self.send_batch():
                total += claimed
            if not self._batches:
                return total
            async with self._quiet:
                await self._quiet.wait_for(lambda: not self._batches)

    async def send_batch(self) -> int:
        """Reserve one batch; claim and send each row as its slot comes up; record the results.
        Returns the rows reserved."""
        self._batches += 1
        try:
            return await self._send_batch()
        finally:
            self._batches -= 1
            async with self._quiet:
                self._quiet.notify_all()

    async def _send_batch(self) -> int:
        size = self._claim_size()
        items = await self.store.reserve_outbox(size, self.lease_s)
        if not items:
            self._empty_at = asyncio.get_running_loop().time()
            return 0
        if len(items) == size:
            self._wake.set()  # a full batch: there may be more, rouse another lane
        # claims stop a little before the reservation lapses and another lane may take the rows
        deadline = time.monotonic() + self.lease_s * 0.8
        sends: list[asyncio.Task[tuple[int, str, int, str] | None]] = []
        pending = list(items)
        while pending:
            group, used = await self._slots(pending, deadline)
            del pending[:used]
            if not group:
                if used:
                    continue  # every row looked at was held for its number's daily cap
                self.counts["expired"] += len(pending)  # due again when the reservation lapses
                break
            sends += await self._claim_and_send(group)
        outcomes = await asyncio.gather(*sends)
        sent = [o for o in outcomes if o is not None]
        if sent:
            await self.store.outbox_sent(sent)
            self.counts["sent"] += len(sent)
            metrics.SENDS.labels("sent").inc(len(sent))
        return len(items)

    async def _slots(
        self, pending: list[OutboxItem], deadline: float
    ) -> tuple[list[OutboxItem], int]:
        """The next rows whose connection and rate-limit grant are in hand, and how many rows
        from the head of `pending` were used up (sent or held for a daily cap). Connections are
        taken half of them at a time (a claim per freed connection would cost a database
        trip per send); the first row waits for its grant, the rows after it join only while
        grants come without waiting."""
        taken = await self._in_flight.take(len(pending))
        group: list[OutboxItem] = []
        capped: list[tuple[OutboxItem, Grant]] = []
        used = 0
        for item in pending[:taken]:
            key, weight = item.sender or DEFAULT_SENDER, _weight(item)
            grant = await self.pacer.take(key, weight)
            if not grant.ok:  # the number's daily cap: the row waits for the next day
                capped.append((item, grant))
                used += 1
                continue
            if group and grant.wait > 0 or time.monotonic() + grant.wait > deadline:
                await self.pacer.give_back(key, weight, grant)
                break
            if grant.wait > 0:
                await asyncio.sleep(grant.wait)
            group.append(item)
            self._grants[item.id] = grant
            used += 1
        self._in_flight.release(taken - len(group))
        if capped:
            await self.store.outbox_defer(
                [(item.id, item.attempts, g.tomorrow_s) for item, g in capped], "daily cap"
            )
            self.counts["capped"] += len(capped)
            metrics.SENDS.labels("capped").inc(len(capped))
        return group, used

    async def _claim_and_send(
        self, group: list[OutboxItem]
    ) -> list[asyncio.Task[tuple[int, str, int, str] | None]]:
        try:
            claimed = await self.store.claim_sends(group)
        except BaseException:
            await asyncio.shield(self._release(group, []))
            raise
        await self._release(group, claimed)
        if len(claimed) < len(group):  # opted out (or paused, or taken) while waiting
            self.counts["cancelled"] += len(group) - len(claimed)
            metrics.SENDS.labels("not_claimed").inc(len(group) - len(claimed))
        return [asyncio.create_task(self._send_one(item)) for item in claimed]

    async def _release(self, group: list[OutboxItem], claimed: list[OutboxItem]) -> None:
        """Hand back the slots of rows that were not claimed (opted out, paused, taken)."""
        mine, gone = {i.id for i in claimed}, []
        for item in group:
            grant = self._grants.pop(item.id, None)
            if item.id not in mine:
                gone.append((item, grant))
                self._in_flight.release(1)
        for item, grant in gone:
            await self.pacer.give_back(item.sender or DEFAULT_SENDER, _weight(item), grant)

    def _claim_size(self) -> int:
        # no more than the rate limit lets out well within the lease, across all lanes
        rates = [
            self.rule(DEFAULT_SENDER).per_second,
            *(r.per_second for r in self._rules.values()),
        ]
        slowest = min([self.rate_per_second, *rates])
        return max(1, min(self.batch_size, int(slowest * self.lease_s / (2 * self.lanes))))

    async def _send_one(self, item: OutboxItem) -> tuple[int, str, int, str] | None:
        try:
            return await self._send(item)
        finally:
            self._in_flight.release(1)

    async def _send(self, item: OutboxItem) -> tuple[int, str, int, str] | None:
        try:
            result = await self.gateway.send(item)
        except RetryableSendError as exc:
            if exc.code in SLOW_CODES:  # Twilio says the number sends too fast: slow it down
                await self.pacer.slow_down(item.sender or DEFAULT_SENDER, exc.retry_after or 0.0)
            if not exc.in_doubt:
                await self._retry_or_fail(item, exc)
                return None
            hits = await self._lookup(item)
            if hits:
                found = hits[0]  # it got through after all: record it, never send it again
                return (item.id, found.sid, found.segments, found.encoding or "")
            # not there (yet), or nobody can say: the request may still land; never resend it
            # blindly, look again once it can no longer be accepted
            await self._doubt(item, str(exc), wait=self._window_left(item) if hits == [] else 0)
            return None
        except PermanentSendError as exc:
            log.warning("outbox %s failed permanently (code %s)", item.id, exc.code)
            await self.store.outbox_failed(item.id, exc.code, str(exc))
            self.counts["failed"] += 1
            return None
        except Exception as exc:  # a bug below us: whether it reached the provider is unknown
            log.exception("outbox %s: unexpected send error", item.id)
            await self._doubt(item, f"unexpected {type(exc).__name__}")
            return None
        return (item.id, result.sid, result.segments, result.encoding or "")

    def _window_left(self, item: OutboxItem) -> float:
        """Seconds until no request of this claim can still be accepted (0: settled now)."""
        if item.claimed_at is None:
            return self.late_accept_s
        ends = item.claimed_at + self._settles_after
        return max((ends - datetime.now(UTC)).total_seconds(), 0.0)

    async def _doubt(self, item: OutboxItem, error: str, wait: float = 0.0) -> None:
        """One more unsettled lookup for this row: look again later (not before `wait`), or
        give it to an operator."""
        lookups = item.lookups + 1
        give_up = lookups >= self.max_lookups and wait <= 0
        delay = max(min(self.lookup_base_s * 2 ** (lookups - 1), self.backoff_max), wait)
        await self.store.outbox_in_doubt(item, delay, error, give_up=give_up)
        self.counts["unknown" if give_up else "in_doubt"] += 1
        metrics.SENDS.labels("unknown" if give_up else "in_doubt").inc()
        if give_up:
            log.warning("outbox %s: outcome unknown after %d lookups", item.id, lookups)

    async def settle_in_doubt(self) -> Recovery:
        """Look up the in-doubt rows that are due: found -> sent, not found -> queued again
        (the provider says it never accepted them), lookup failed -> later, or `unknown`."""
        rows = await self.store.due_in_doubt()
        counts = await self.store.uncertain_counts()
        for state in ("in_doubt", "unknown"):
            metrics.UNCERTAIN_SENDS.labels(state).set(counts.get(state, 0))
        if not rows:
            return Recovery(0, 0, 0, 0)
        found = await asyncio.gather(*[self._lookup(item) for item in rows])
        known, early = [], []
        for item, hits in zip(rows, found, strict=True):
            if hits == [] and self._window_left(item) > 0:
                early.append(item)  # not there yet, but its request may still land
            elif hits is not None:
                known.append((item, hits))
        sent, requeued = await self.store.settle_sending(known)
        for item, hits in zip(rows, found, strict=True):
            if hits is None:
                await self._doubt(item, "lookup failed again")
        for item in early:
            await self._doubt(item, "not at the provider yet", wait=self._window_left(item))
        return Recovery(len(rows), sent, requeued, len(rows) - len(known))

    async def recover(self, grace_s: float | None = None) -> Recovery:
        """Settle rows left `sending` by a dead sender (see the module docstring)."""
        grace = self.recover_grace_s if grace_s is None else grace_s
        stale = await self.store.stale_sending(grace)
        if not stale:
            return Recovery(0, 0, 0, 0)
        found = await asyncio.gather(*[self._lookup(item) for item in stale])
        known = [(item, hits) for item, hits in zip(stale, found, strict=True) if hits is not None]
        sent, requeued = await self.store.settle_sending(known)
        for item, hits in zip(stale, found, strict=True):
            if hits is None:
                await self._doubt(item, "recovered, lookup failed")
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

    def rule(self, key: str) -> RateRule:
        """The rate of a sender key: configured, else by the number's kind, else the default."""
        if key in self._rules:
            return self._rules[key]
        return rule_for(key or self.default_sender, self._rules, self.rate_per_second)


def sender_for(settings: Any, store: OutboxStore, gateway: Gateway) -> OutboundSender:
    """The server's sender: each number's rate shared through the database with every other
    process and machine on it (`bot.storage.send_rates`), or through Redis when configured."""
    twilio = settings.twilio
    default = (twilio.number or twilio.messaging_service_sid) if twilio is not None else None
    sender = OutboundSender(store, gateway, rate_per_second=settings.send_rate,
                            rates=settings.rate_limits, default_sender=default)  # fmt: skip
    if getattr(settings, "redis_url", None):
        from bot.pacing import RedisRates

        sender.pacer = RedisRates(settings.redis_url, sender.rule)
        store.rate_hook = sender.pacer.slow_down  # type: ignore[attr-defined]  # 30022 reports
    else:
        sender.pacer = SharedRates(store.db, sender.rule)  # type: ignore[attr-defined]
    return sender


def _weight(item: OutboxItem) -> int:
    """What a send costs of its number's rate: its segments (an MMS counts one)."""
    return max(1, count_segments(item.body).count) if item.body else 1
