"""Broadcasts: one personalised text to a segment of fans, at a sane hour, paced, exactly once.

Off the inbound path: a broadcast is written into the same outbox the replies use (kind
`broadcast`), and `bot.outbound.OutboundSender` sends it. Lifecycle:

    create (draft) -> preview -> send (enqueuing -> sending) | schedule (scheduled -> ...)
                   pause <-> resume;  cancel at any time;  failed (with its reason) -> resume
    sending -> completed: every text in a final state (sent, delivered, failed, cancelled ...),
               noticed by the scheduler's step and by every read of the broadcast's progress

A broadcast that cannot be enqueued (a stored segment that no longer validates, a bug) ends
`failed` with a reason the CLI and the inbox show; the scheduler goes on with the others.

Enqueuing runs in chunks (`BroadcastStore.enqueue_chunk`), each one transaction, resumable
after a crash from the stored cursor. Each text gets `not_before`: the opening of the fan's
quiet-hours window when it is closed (default 08:00-21:00 local), otherwise a pacing slot at
the broadcast's rate; the sender's token bucket paces within a slot. A fan who opts out after
being enqueued gets nothing: the guarded claim of each send cancels texts to unsubscribed fans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.audience.broadcast_model import (
    Broadcast,
    BroadcastStats,
    NewBroadcast,
    Placeholder,
    Preview,
    check_template,
    parse_template,
    render,
)
from bot.audience.links import LinkSettings, find_urls, rewrite, sample_short
from bot.audience.quiet_hours import QuietHours, valid_zone
from bot.audience.segments import Segment
from bot.errors import ConfigError, Conflict, FanlineError, Location, StorageError
from bot.sms import sms_segments
from bot.storage import Store
from bot.storage.broadcast_store import BroadcastStore, ChunkResult

log = logging.getLogger(__name__)

SMS_SEGMENT_PRICE = 0.0083  # USD per outbound SMS segment (Twilio US list price; configurable)
MMS_PRICE = 0.0220  # USD per outbound MMS
PREVIEW_SAMPLE = 200
MAX_SEGMENTS = 10  # Twilio refuses bodies over 1600 characters; a broadcast stays well below


class BroadcastService:
    """The broadcast use cases; the CLI, the inbox and the scheduler task call these."""

    def __init__(
        self,
        store: Store,
        *,
        default_rate: float = 10.0,
        chunk_size: int = 5_000,
        segment_price: float = SMS_SEGMENT_PRICE,
        mms_price: float = MMS_PRICE,
        links: LinkSettings | None = None,
        public_url: str = "http://127.0.0.1:5005",
    ) -> None:
        links = links or LinkSettings()
        self.link_base = links.base(public_url)
        self.records = BroadcastStore(store, link_base=self.link_base, utm=links.utm)
        self.default_rate = default_rate
        self.chunk_size = chunk_size
        self.segment_price = segment_price
        self.mms_price = mms_price

    async def create(self, spec: NewBroadcast) -> int:
        """Validate and store a draft; nothing is sent until `send` or `schedule`."""
        check(spec)
        return await self.records.create(spec)

    async def get(self, broadcast_id: int) -> Broadcast:
        return await self.records.get(broadcast_id)

    async def all(self) -> list[Broadcast]:
        await self.records.complete_finished()
        return await self.records.all()

    async def preview(self, broadcast_id: int, at: datetime | None = None) -> Preview:
        b = await self.records.get(broadcast_id)
        return await self.preview_spec(
            NewBroadcast(b.name, b.body, b.segment, b.media_urls, b.sender, b.rate,
                         b.quiet_start, b.quiet_end, b.default_zone, b.ab),
            at,
        )  # fmt: skip

    async def preview_spec(self, spec: NewBroadcast, at: datetime | None = None) -> Preview:
        """Recipients, sample texts, SMS segments and cost; the database does the counting.
        Links are shown short, as fans get them (the segment count is the real one); an A/B
        broadcast is previewed by its longest variant."""
        body = spec.body
        if spec.ab is not None:
            body = max((v.body for v in spec.ab.variants), key=lambda t: len(self.shown(t)))
        parts = parse_template(self.shown(body))
        names = sorted({p.name for p in parts if isinstance(p, Placeholder)})
        count = await self.records.count(spec.segment)
        profiles = await self.records.sample_profiles(spec.segment, PREVIEW_SAMPLE)
        texts = [render(parts, p) for p in profiles] or [render(parts, {})]
        counted = [sms_segments(t) for t in texts]
        longest = await self.records.longest_values(spec.segment, names)
        worst = render(parts, {n: "x" * longest.get(n, 0) for n in names})
        encoding = "UCS-2" if any(e == "UCS-2" for _, e in counted) else "GSM-7"
        average = sum(n for n, _ in counted) / len(counted)
        worst_count = max(max(n for n, _ in counted), sms_segments(worst)[0])
        estimated = round(average * count)
        cost = count * self.mms_price if spec.media_urls else estimated * self.segment_price
        quiet = QuietHours.parse(spec.quiet_start, spec.quiet_end)
        held = await self.records.count_held(
            spec.segment, quiet, spec.default_zone, at or datetime.now(UTC)
        )
        return Preview(count, tuple(texts[:3]), round(average, 2), worst_count, encoding,
                       estimated, round(cost, 2), held)  # fmt: skip

    def shown(self, body: str) -> str:
        """The text with its URLs as the short links fans get (same length as a real one)."""
        return rewrite(body, find_urls(body), lambda _: sample_short(self.link_base))

    async def send(self, broadcast_id: int) -> Broadcast:
        """Start now: the caller (CLI, scheduler) then runs `enqueue`."""
        try:
            return await self.records.start(broadcast_id, None)
        except ConfigError as exc:  # a stored row that no longer validates
            raise await self._failed(broadcast_id, exc) from None

    async def schedule(self, broadcast_id: int, at: datetime) -> Broadcast:
        if at.tzinfo is None:
            raise ConfigError("a schedule needs a time zone (e.g. 2026-05-01T18:00-04:00)")
        return await self.records.start(broadcast_id, at)

    async def enqueue(
        self,
        broadcast_id: int,
        *,
        on_chunk: Callable[[ChunkResult], None] | None = None,
        max_chunks: int | None = None,
        at: datetime | None = None,
    ) -> int:
        """Write the broadcast's texts into the outbox, chunk by chunk; return texts added.

        Stops when every recipient is enqueued, when the broadcast is paused or cancelled, or
        after `max_chunks`. Safe to run again, and from several processes at once. `at` fixes
        the clock that quiet hours and pacing are computed from (default: now).
        """
        try:
            return await self._enqueue(broadcast_id, on_chunk, max_chunks, at)
        except StorageError:
            raise  # the database is away: nothing is wrong with the broadcast, try again later
        except Exception as exc:
            raise await self._failed(broadcast_id, exc) from None

    async def _failed(self, broadcast_id: int, exc: Exception) -> BroadcastFailed:
        reason = failure_reason(exc)
        log.error("broadcast %s failed: %s", broadcast_id, reason)  # no traceback: fan data
        await self.records.fail(broadcast_id, reason)
        return BroadcastFailed(f"broadcast {broadcast_id} failed: {reason}")

    async def _enqueue(
        self,
        broadcast_id: int,
        on_chunk: Callable[[ChunkResult], None] | None,
        max_chunks: int | None,
        at: datetime | None,
    ) -> int:
        b = await self.records.get(broadcast_id)
        parts = parse_template(b.body)
        total, chunks = 0, 0
        while max_chunks is None or chunks < max_chunks:
            result = await self.records.enqueue_chunk(broadcast_id, parts, self.chunk_size, at)
            total += result.added
            chunks += 1
            if on_chunk is not None:
                on_chunk(result)
            if result.done or result.status != "enqueuing":
                break
        log.info("broadcast %s: %d texts enqueued", broadcast_id, total)
        return total

    async def run_due(self, at: datetime | None = None) -> list[int]:
        """Scheduler step: start broadcasts whose time has come, finish interrupted ones.

        Each broadcast on its own: one that fails ends `failed` and the others still start.
        Several schedulers (workers, processes) may run this at once: starting is a conditional
        claim, and a broadcast another scheduler started, paused or cancelled meanwhile is
        simply not this step's (a conflict is never a failure)."""
        at = at or datetime.now(UTC)
        await self._decide_due(at)
        started = []
        for broadcast_id in await self.records.due(at):
            try:
                if not await self._start_due(broadcast_id, at):
                    continue
            except (BroadcastFailed, Conflict):
                continue  # failures are recorded with their reason by `enqueue`
            except StorageError:
                raise  # the database is away: the whole step waits for the next interval
            except Exception as exc:  # e.g. a stored row that no longer loads
                await self._failed(broadcast_id, exc)
                continue
            started.append(broadcast_id)
        await self.records.complete_finished()
        return started

    async def _decide_due(self, at: datetime) -> None:
        """A/B tests whose time has come: the winner chosen, and sent to the rest when the
        broadcast says `auto` (the enqueue itself is the `due` loop's, as for any start)."""
        for broadcast_id in await self.records.due_decisions(at):
            b = await self.records.get(broadcast_id)
            send = b.ab is not None and b.ab.send_winner == "auto"
            try:
                decided = await self.records.decide(broadcast_id, None, send)
            except Conflict:
                continue  # another scheduler decided it, or it was paused meanwhile
            winner = decided.ab.winner if decided.ab else None
            log.info("broadcast %s: variant %s won", broadcast_id, winner.label if winner else "?")

    async def send_winner(self, broadcast_id: int, label: str | None = None) -> Broadcast:
        """By hand (`fanline broadcast send-winner N [--variant B]`, the inbox): the winner (the
        one chosen, else the best so far, or `label`) goes to the held fans. The caller then
        runs `enqueue` (the scheduler does too)."""
        return await self.records.decide(broadcast_id, label, send=True)

    async def _start_due(self, broadcast_id: int, at: datetime) -> bool:
        """Claim a due scheduled broadcast, or go on enqueuing an interrupted one; False when
        another scheduler won the claim (it enqueues) or the broadcast is no longer due."""
        b = await self.records.get(broadcast_id)
        if b.status == "scheduled" and not await self.records.claim_due(broadcast_id, at):
            return False
        if b.status not in ("scheduled", "enqueuing"):
            return False
        await self.enqueue(broadcast_id)
        return True

    async def run_scheduler(self, stop_event: asyncio.Event, interval_s: float = 15.0) -> None:
        """Background task for `fanline run`: poll for due broadcasts until stopped."""
        while not stop_event.is_set():
            try:
                await self.run_due()
            except Exception:  # top of a background task: log and keep the schedule going
                log.exception("broadcast scheduler step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=interval_s)

    async def pause(self, broadcast_id: int) -> int:
        """Hold every queued text of the broadcast (texts already handed to Twilio go on)."""
        return await self.records.pause(broadcast_id)

    async def resume(self, broadcast_id: int, *, enqueue: bool = True) -> int:
        """Release held texts of a paused broadcast, or retry a failed one (its reason is
        cleared; enqueuing goes on from the stored cursor, so nobody gets a second copy).
        With `enqueue=False` (a web request) the scheduler writes the rest of an interrupted
        enqueue on its next step instead of the caller."""
        held = await self.records.resume(broadcast_id)
        b = await self.records.get(broadcast_id)
        if enqueue and b.status == "enqueuing":
            await self.enqueue(broadcast_id)
        return held

    async def cancel(self, broadcast_id: int) -> int:
        return await self.records.cancel(broadcast_id)

    async def stats(self, broadcast_id: int) -> BroadcastStats:
        await self.records.complete_finished(broadcast_id)
        return await self.records.stats(broadcast_id)


class BroadcastFailed(FanlineError):
    """A broadcast ended `failed`; the message carries the reason."""


def failure_reason(exc: Exception) -> str:
    """What an operator is told: our own errors say what is wrong; anything else only its
    kind (its message could hold a fan's number, e.g. a database error's parameters)."""
    if isinstance(exc, FanlineError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); see the server log"


def check(spec: NewBroadcast) -> None:
    """A broadcast's settings, checked before anything is stored (errors name the field)."""
    where = Location(f"broadcast {spec.name!r}")

    def fail(message: str, key: str) -> None:
        raise ConfigError(message, replace(where, key=key))

    if not spec.body.strip() and not spec.media_urls:
        fail("a broadcast needs a text or media", "body")
    bodies = [spec.body] + [v.body for v in spec.ab.variants[1:]] if spec.ab else [spec.body]
    for body in bodies:
        parts = check_template(body)
        longest = render(parts, {p.name: "x" * 20 for p in parts if isinstance(p, Placeholder)})
        if sms_segments(longest)[0] > MAX_SEGMENTS:
            fail(f"the text is longer than {MAX_SEGMENTS} SMS segments", "body")
    if spec.rate <= 0:
        fail("the rate must be a positive number of messages per second", "rate")
    try:
        QuietHours.parse(spec.quiet_start, spec.quiet_end)
    except ValueError as exc:
        fail(str(exc), "quiet_hours")
    if not valid_zone(spec.default_zone):
        fail(f"unknown time zone {spec.default_zone!r}", "default_zone")
    for url in spec.media_urls:
        if not url.startswith(("https://", "http://")):
            fail(f"media must be an http(s) URL, got {url!r}", "media")


def new_broadcast(
    name: str, body: str, segment: Segment, *, default_rate: float, **options: object
) -> NewBroadcast:
    """A NewBroadcast with the engine's defaults for what the caller left out."""
    values = {k: v for k, v in options.items() if v is not None}
    values.setdefault("rate", default_rate)
    return NewBroadcast(name=name, body=body, segment=segment, **values)  # type: ignore[arg-type]
