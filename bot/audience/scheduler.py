"""The timed-flow scheduler: flows that start in time (`trigger:` in flows/*.yml) and `wait` steps.

A singleton job of the worker role (lease `timed-flows`). Each pass (1) finds what came due
since the last one and writes it as `flow_jobs` rows (SQL in `storage/flow_job_store.py`: never
twice per fan, flow, trigger and occurrence), then (2) claims due jobs and runs each flow as a
turn of its own under the fan's lock (`Pipeline.timed_turn`), its texts queued as kind `timed`
in the same transaction that marks the job done. The outbox's guarded claim then checks STOP,
erasure and the fan's waking hours at send time. A job a dead process left `running` is taken
again once its lease lapses: its texts were not committed, so it is run, never sent, twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.audience.quiet_hours import zone_for_fan
from bot.domain import PERSON_IN_THREAD, QueuedReply
from bot.flows import Flow
from bot.pipeline import Pipeline, TurnOutcome
from bot.storage import flow_job_store as jobs

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)  # a running job untouched this long is taken again
BATCH = 200  # jobs claimed at a time
MAX_ATTEMPTS = 3  # a job that failed this often is skipped (reason `error`)
# a job due while a person owns the fan's thread waits: looked at again this often, and run once
# the fan is back with the bot; skipped (reason `person_in_thread`) if still held a day past due
HOLD = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC)


class TimedFlows:
    """Finds and runs due timed flows; `run` is the background job, `run_pass` one pass."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        interval_s: float = 15.0,
        grace_s: float = 0.0,
        links: jobs.ShortLinks | None = None,
    ):
        self.pipeline = pipeline
        self.store = pipeline.store
        self.interval_s = interval_s
        self.links = links  # `fanline.links.track_responses`: timed texts' URLs become short links
        # on PostgreSQL a lower id may commit after a higher one: cursors stop short of the
        # last `grace_s` seconds, so that nothing is passed over
        self.grace = timedelta(seconds=grace_s)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_pass()
            except Exception:  # top of a background task: log and keep the schedule going
                log.exception("timed-flow pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)

    def _flows(self) -> Mapping[str, Flow]:
        return self.pipeline.brain.engine.flows

    async def run_pass(
        self, at: datetime | None = None, *, contact_id: int | None = None
    ) -> list[TurnOutcome]:
        """Find, then run what is due at `at` (default now). `contact_id`: only that fan's jobs
        run (conversation tests move one fan's clock); birthdays are then looked up for that
        fan alone, without moving the shared cursor."""
        at = at or _now()
        await self.find(at, contact_id=contact_id)
        outcomes: list[TurnOutcome] = []
        for _ in range(20):  # a pass is bounded: jobs a pass itself made due wait for the next
            claimed = await self.store.db.run(jobs.claim, at, LEASE, BATCH, contact_id)
            if not claimed:
                break
            for job in claimed:
                outcome = await self._run_job(job, at)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    # ---- (1) find ----------------------------------------------------------------------------

    async def find(self, at: datetime, *, contact_id: int | None = None) -> int:
        flows = {f.id: f.trigger for f in self._flows().values() if f.trigger is not None}
        upto = at - self.grace
        db = self.store.db
        added = await db.run(jobs.waits, upto, at)
        signup = [(f, t.after_signup) for f, t in flows.items() if t.after_signup is not None]
        if signup:
            added += await db.run(jobs.after_signup, signup, upto, at)
        for flow, t in flows.items():
            if t.at is not None and t.at <= at:
                added += await db.run(self._at_once, flow, t.at, at, contact_id)
            if t.no_reply_after is not None and t.broadcast is not None:
                added += await db.run(
                    jobs.no_reply_to_broadcast, flow, t.broadcast, t.no_reply_after, at
                )
            if t.no_reply_after is not None and t.flow is not None:
                added += await db.run(jobs.no_reply_to_flow, flow, t.flow, t.no_reply_after, at)
            if t.on_birthday is not None:
                added += await self._birthdays(flow, t.on_birthday, at, contact_id)
        tags = [(f, t.tagged) for f, t in flows.items() if t.tagged is not None]
        if tags:  # tags found on profiles alone first: every way a tag is added fires it
            await db.run(jobs.profile_tags, at, contact_id)
            added += await db.run(jobs.tagged, tags, at)
        clicks = [(f, t.on_click) for f, t in flows.items() if t.on_click is not None]
        if clicks:
            added += await db.run(jobs.clicked, clicks, at)
        return added

    @staticmethod
    def _at_once(conn: Any, flow: str, when: datetime, at: datetime, contact_id: int | None) -> int:
        """The `at` flow's jobs, once (its cursor holds the instant it was written for); a time
        more than a day past when first seen is not started. One fan's pass: theirs alone."""
        name, stamp = f"at:{flow}", int(when.timestamp())
        if at - when > jobs.LATE:
            return 0
        if contact_id is not None:
            return jobs.at_time(conn, flow, when, at, contact_id)
        if jobs.cursor(conn, name) == stamp:
            return 0
        added = jobs.at_time(conn, flow, when, at)
        jobs.move_cursor(conn, name, stamp, at)
        return added

    async def _birthdays(
        self, flow: str, clock: tuple[int, int], at: datetime, contact_id: int | None
    ) -> int:
        """Fans whose local birthday morning falls on a UTC day not scanned yet (today and
        tomorrow at the first pass); one scan per day reads the fans born around it."""
        name = f"on_birthday:{flow}"
        today = at.date()
        days = [today, today + timedelta(days=1)]
        if contact_id is None:
            done = await self.store.db.run(jobs.cursor, name)
            days = [d for d in days if done is None or d.toordinal() > done]
        added = 0
        for day in days:
            rows = await self.store.db.run(jobs.birthdays, jobs.month_days(day), contact_id)
            due = [job for r in rows if (job := _birthday_job(r, day, clock)) is not None]

            def write(conn: Any, due: list[dict[str, Any]] = due, day: date = day) -> int:
                count = jobs.insert_jobs(conn, flow, "on_birthday", due, at)
                if contact_id is None:
                    jobs.move_cursor(conn, name, day.toordinal(), at)
                return count

            added += await self.store.db.run(write)
        return added

    # ---- (2) run -----------------------------------------------------------------------------

    async def _run_job(self, job: jobs.FlowJob, at: datetime) -> TurnOutcome | None:
        db = self.store.db
        ctx = await self.store.load_turn(job.contact_id)
        phone = ctx.contact.phone
        if phone is None:
            await db.run(jobs.settle, job, "skipped", "erased", at)
            return None
        try:
            async with self.pipeline.locks.hold(phone):
                ctx = await self.store.load_turn(job.contact_id)  # again, under the lock
                reason = self._skip_reason(ctx, job)
                if reason == "person_in_thread" and not _late(job, at):
                    await db.run(jobs.hold, job, at + HOLD)
                    return None
                if reason is not None:
                    await db.run(jobs.settle, job, "skipped", reason, at)
                    return None
                record = await self.pipeline.timed_turn(
                    ctx, job.flow, after_step=job.step, seed=job.id
                )
                ids = await db.run(jobs.finish, job, record, at, self.links)
        except Exception:  # one fan's failure (a custom action) must not stop the pass
            log.exception("timed flow failed", extra={"contact_id": job.contact_id})
            if job.attempts >= MAX_ATTEMPTS:
                await db.run(jobs.settle, job, "skipped", "error", at)
            return None
        if ids is None:  # taken over by another runner meanwhile: it writes the texts
            return None
        replies = tuple(QueuedReply(i, r) for i, r in zip(ids, record.replies, strict=True))
        outcome = TurnOutcome(0, job.contact_id, replies, events=tuple(record.events))
        if replies:
            self.pipeline.on_commit(outcome)  # wakes the sender
        return outcome

    def _skip_reason(self, ctx: Any, job: jobs.FlowJob) -> str | None:
        if ctx.contact.subscription != "subscribed":
            return "unsubscribed"
        if job.flow not in self._flows():
            return "flow_removed"
        if ctx.status in PERSON_IN_THREAD:
            return "person_in_thread"  # an agent is talking with the fan: not now
        return None


def _late(job: jobs.FlowJob, at: datetime) -> bool:
    return job.due_at is not None and at - job.due_at > jobs.LATE


def _birthday_job(row: Any, day: date, clock: tuple[int, int]) -> dict[str, Any] | None:
    """The job of a fan whose birthday morning (local `clock`) falls on UTC `day`, or None."""
    profile = row.profile or {}
    try:
        born = date.fromisoformat(str(profile.get("birthday"))[:10])
    except ValueError:
        return None
    zone = ZoneInfo(zone_for_fan(profile, row.phone))
    for local in (day - timedelta(days=1), day, day + timedelta(days=1)):
        if (born.month, born.day) != (local.month, local.day) and not _leap_fallback(born, local):
            continue
        due = datetime.combine(local, time(*clock), zone).astimezone(UTC)
        if due.date() == day:
            return {"contact_id": row.id, "occurrence": str(local.year), "due_at": due}
    return None


def _leap_fallback(born: date, local: date) -> bool:
    """A Feb 29 birthday is kept on Feb 28 in other years."""
    if (born.month, born.day) != (2, 29) or (local.month, local.day) != (2, 28):
        return False
    year = local.year
    return not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))
