"""Escalations' clock and timer: team hours, when an escalation is due, and the sweep that tells a
fan nobody could answer in time.

Beside the message's path, on its human side. When a turn hands off, the pipeline asks
`EscalationPolicy` when the escalation is due (its priority's timeout, counted in team hours)
and whether the team is at work (after hours, one honest acknowledgement saying when they are
back: `{team_back}`). `EscalationTimer` runs in the server as one periodic sweep, never a sleep
per escalation: escalations still unclaimed and unanswered at their due time are marked missed
(one winner across processes: `escalation_store.claim_missed`), the fan gets one follow-up
through the outbox (`utter_escalation_missed`; the sender checks opt-outs again at send time),
and the conversation goes back to the bot, listed for the team as `missed` until someone
answers or resolves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.messages import OutboundSms, utcnow
from bot.settings import TeamHours
from bot.storage import Store
from bot.storage import escalation_store as sql
from bot.storage.db import Connection

log = logging.getLogger(__name__)
MISSED_RESPONSE = "utter_escalation_missed"
# team hours an escalation may wait unclaimed before the fan is told (None: never)
DEFAULT_TIMEOUTS: dict[str, float | None] = {"urgent": 1, "high": 4, "normal": 8, "low": 16}


@dataclass(frozen=True, slots=True)
class TeamClock:
    """When people are at work. No team hours configured: always."""

    hours: TeamHours | None = None

    def is_open(self, at: datetime) -> bool:
        return self._window_at(at) is not None

    def add(self, at: datetime, hours: float) -> datetime:
        """The instant `hours` of team time after `at` (time outside team hours does not count)."""
        left = timedelta(hours=hours)
        cursor = at
        for _ in range(800):  # two years of days: more than any timeout
            start, end = self._next_window(cursor)
            if start + left <= end:
                return start + left
            left -= end - start
            cursor = end
        return cursor

    def back_at(self, at: datetime) -> datetime:
        """When the team is next at work (`at` itself while they are)."""
        return self._next_window(at)[0]

    def back_text(self, at: datetime) -> str:
        """'now', 'today at 9am EST', 'tomorrow at 9am EST', 'Monday at 9:30am EDT'."""
        back = self.back_at(at)
        if back <= at or self.hours is None:
            return "now"
        zone = ZoneInfo(self.hours.timezone)
        local, today = back.astimezone(zone), at.astimezone(zone).date()
        clock = local.strftime("%I:%M%p").lstrip("0").replace(":00", "").lower()
        days = (local.date() - today).days
        day = {0: "today", 1: "tomorrow"}.get(days, local.strftime("%A"))
        return f"{day} at {clock} {local.strftime('%Z')}"

    def _window_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        start, end = self._next_window(at)
        return (start, end) if start <= at else None

    def _next_window(self, at: datetime) -> tuple[datetime, datetime]:
        """The working window containing `at`, or else the next one (UTC instants)."""
        if self.hours is None or not self.hours.days:
            return at, at + timedelta(days=3650)
        zone = ZoneInfo(self.hours.timezone)
        opens, closes = time.fromisoformat(self.hours.start), time.fromisoformat(self.hours.end)
        day = at.astimezone(zone).date()
        for offset in range(8):
            d = day + timedelta(days=offset)
            if d.weekday() not in self.hours.days:
                continue
            start = datetime.combine(d, opens, tzinfo=zone).astimezone(UTC)
            end = datetime.combine(d, closes, tzinfo=zone).astimezone(UTC)
            if end <= start:  # a window past midnight ends the next day
                end = datetime.combine(d + timedelta(days=1), closes, tzinfo=zone).astimezone(UTC)
            if at < end:
                return max(start, at), end
        return at, at + timedelta(days=3650)  # unreachable with at least one team day


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """Per priority, how long an escalation may wait for a person (team hours), and the clock."""

    clock: TeamClock = field(default_factory=TeamClock)
    timeouts: dict[str, float | None] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))

    def due_at(self, priority: str, at: datetime) -> datetime | None:
        hours = self.timeouts.get(priority, self.timeouts.get("normal"))
        return None if hours is None else self.clock.add(at, hours)


@dataclass(frozen=True, slots=True)
class Missed:
    """One escalation the sweep marked missed."""

    escalation_id: int
    contact_id: int
    conversation_id: int
    told: bool  # a follow-up was queued (not for an opted-out or erased fan)


class EscalationTimer:
    """The periodic sweep over escalations past their due time (one per server process)."""

    def __init__(
        self,
        store: Store,
        responses: Callable[[], Any],  # the live bot.flows.responses.Responses (hot reload)
        *,
        every_s: float = 30.0,
        batch: int = 200,
        on_missed: Callable[[list[Missed]], None] = lambda missed: None,
    ):
        self.store, self.responses = store, responses
        self.every_s, self.batch, self.on_missed = every_s, batch, on_missed

    async def sweep(self, at: datetime | None = None) -> list[Missed]:
        """Mark every escalation due by `at` missed and queue its follow-up; return them."""
        at = at or utcnow()
        missed: list[Missed] = []
        while True:
            done = await self.store.db.run(self._sweep_batch, at, self.responses())
            missed += done
            if len(done) < self.batch:
                break
        if missed:
            self.on_missed(missed)  # after commit: wake the sender, tell the inbox
        return missed

    def _sweep_batch(self, conn: Connection, at: datetime, responses: Any) -> list[Missed]:
        out = []
        for row in sql.claim_missed(conn, at, self.batch):
            told = self._follow_up(conn, row, at, responses)
            sql.add_event(conn, row["contact_id"], "escalation_missed",
                          {"escalation_id": row["id"], "priority": row["priority"],
                           "told": told}, at)  # fmt: skip
            out.append(Missed(row["id"], row["contact_id"], row["conversation_id"], told))
        return out

    def _follow_up(
        self, conn: Connection, row: dict[str, Any], at: datetime, responses: Any
    ) -> bool:
        fan = row["fan"]
        if fan["phone"] is None or fan["subscription"] == "unsubscribed":
            return False
        if responses is None or MISSED_RESPONSE not in responses:
            return False
        profile = dict(fan["profile"] or {})
        fields = {**profile, "subscription": fan["subscription"],
                  "subscribed": fan["subscription"] == "subscribed"}  # fmt: skip
        text = responses.render(MISSED_RESPONSE, {}, fields, random.Random(row["id"]))
        reply_to, ours = sql.last_inbound(conn, row["contact_id"])
        sms = OutboundSms(to=fan["phone"], body=text.text, media_urls=text.media_urls,
                          sender=ours)  # fmt: skip
        self.store._enqueue(conn, row["contact_id"], [sms], at, None, reply_to)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # a background task's top: log, keep sweeping
                log.exception("escalation sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
