"""What an agent reads: one thread's whole history and the fan's profile, and the service timers.

Off the inbound path; read-only views over what the pipeline and the queue wrote: messages in
and out (bot turns included), the intent and confidence of each inbound text, escalations and
agents' actions from `events`, consent history, profile fields, tags and dialogue slots.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.errors import NotFound
from bot.inbox.auth import now, utc
from bot.inbox.queue import HUMAN, fan_name
from bot.storage import Database
from bot.storage import inbox_store as sql
from bot.storage.db import Connection
from bot.storage.escalation_store import escalation_texts

# agents' actions and the engine's hand-offs shown between the messages
_MARKERS = {
    "escalated": "escalated", "claimed": "claimed", "reassigned": "reassigned",
    "resolved": "resolved: back to the bot", "snoozed": "snoozed", "held_for_human": None,
    "escalation_missed": "missed: nobody answered in time; the fan was told, back with the bot",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline: a text in or out, a private note, or a marker."""

    id: str
    at: datetime
    kind: str  # fan | bot | agent | note | marker
    body: str = ""
    media_urls: tuple[str, ...] = ()
    status: str = ""
    agent_name: str | None = None
    intent: str | None = None
    confidence: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "kind": self.kind, "body": self.body,
                "media_urls": list(self.media_urls), "status": self.status,
                "agent": self.agent_name, "intent": self.intent,
                "confidence": self.confidence}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Escalation:
    reason: str
    priority: str
    guesses: tuple[tuple[str, float], ...]
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    due_at: datetime | None = None
    missed_at: datetime | None = None
    message_ids: tuple[int, ...] = ()  # the fan's texts that opened or joined it, oldest first

    def to_json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {"reason": self.reason, "priority": self.priority,
                "guesses": [list(g) for g in self.guesses], "created_at": iso(self.created_at),
                "first_response_at": iso(self.first_response_at),
                "resolved_at": iso(self.resolved_at), "due_at": iso(self.due_at),
                "missed_at": iso(self.missed_at),
                "message_ids": list(self.message_ids)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    phone_hint: str  # the last digits only: agents answer in the thread, they need no number
    subscription: str
    subscribed_at: datetime | None
    first_seen: datetime
    tags: tuple[str, ...]
    fields: dict[str, Any]
    slots: dict[str, Any]
    consent: tuple[tuple[str, str, datetime], ...]  # (action, method, at), oldest first

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "phone_hint": self.phone_hint,
                "subscription": self.subscription,
                "subscribed_at": self.subscribed_at.isoformat() if self.subscribed_at else None,
                "first_seen": self.first_seen.isoformat(), "tags": list(self.tags),
                "fields": self.fields, "slots": self.slots,
                "consent": [[a, m, at.isoformat()] for a, m, at in self.consent]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Thread:
    conversation_id: int
    contact_id: int
    status: str
    assignee_id: int | None
    assignee_name: str | None
    snoozed_until: datetime | None
    escalation: Escalation | None
    profile: Profile
    timeline: tuple[Entry, ...]

    @property
    def with_humans(self) -> bool:
        return self.status in HUMAN

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "contact_id": self.contact_id,
            "status": self.status,
            "assignee": {"id": self.assignee_id, "name": self.assignee_name}
            if self.assignee_id else None,
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "escalation": self.escalation.to_json() if self.escalation else None,
            "profile": self.profile.to_json(),
            "timeline": [e.to_json() for e in self.timeline],
        }  # fmt: skip


async def load_thread(db: Database, conversation_id: int, *, limit: int = 300) -> Thread:
    return await db.run(_load_thread, conversation_id, limit)


def _load_thread(conn: Connection, conversation_id: int, limit: int) -> Thread:
    row = sql.thread_head(conn, conversation_id)
    if row is None:
        raise NotFound("no such conversation")
    esc = sql.latest_escalation(conn, conversation_id)
    return Thread(
        conversation_id=row["id"], contact_id=row["contact_id"], status=row["status"],
        assignee_id=row["assignee_id"], assignee_name=row["display_name"],
        snoozed_until=utc(row["snoozed_until"]) if row["snoozed_until"] else None,
        escalation=_escalation(esc, texts(conn, esc["id"])) if esc else None,
        profile=_profile(conn, row["contact_id"], row["dialogue"] or {}),
        timeline=_timeline(conn, row["contact_id"], limit),
    )  # fmt: skip


def _escalation(r: dict[str, Any], message_ids: tuple[int, ...] = ()) -> Escalation:
    def at(key: str) -> datetime | None:
        return utc(r[key]) if r[key] else None

    return Escalation(
        r["reason"], r["priority"], tuple((str(g[0]), float(g[1])) for g in (r["guesses"] or ())),
        utc(r["created_at"]), at("first_response_at"), at("resolved_at"), at("due_at"),
        at("missed_at"), message_ids,
    )  # fmt: skip


def texts(conn: Connection, escalation_id: int) -> tuple[int, ...]:
    return tuple(r["id"] for r in escalation_texts(conn, escalation_id))


def _profile(conn: Connection, contact_id: int, dialogue: dict[str, Any]) -> Profile:
    c = sql.contact(conn, contact_id)
    consent = sql.consent_history(conn, contact_id)
    profile = dict(c["profile"] or {})
    tags = tuple(profile.pop("tags", []) or ())
    return Profile(
        name=fan_name(c["profile"], contact_id),
        phone_hint=f"…{c['phone'][-4:]}" if c["phone"] else "erased",
        subscription=c["subscription"],
        subscribed_at=utc(c["subscribed_at"]) if c["subscribed_at"] else None,
        first_seen=utc(c["created_at"]), tags=tags, fields=profile,
        slots=dict(dialogue.get("slots") or {}),
        consent=tuple((r["action"], r["method"], utc(r["at"])) for r in consent),
    )  # fmt: skip


def _timeline(conn: Connection, contact_id: int, limit: int) -> tuple[Entry, ...]:
    msgs = sql.recent_messages(conn, contact_id, limit)
    since = utc(msgs[0]["created_at"]) if msgs else now()
    evs = sql.fan_events(conn, contact_id, ["intent", *_MARKERS], since)
    intents = {e["message_id"]: e["data"] for e in evs if e["type"] == "intent"}
    entries = [_message_entry(m, intents.get(m["id"])) for m in msgs]
    entries += [_marker(e) for e in evs if _MARKERS.get(e["type"])]
    entries.sort(key=lambda x: (x.at, x.kind == "marker"))
    return tuple(entries)


def _message_entry(m: dict[str, Any], intent: dict[str, Any] | None) -> Entry:
    if m["direction"] == "in":
        kind = "fan"
    elif m["private"]:
        kind = "note"
    else:
        kind = "agent" if m["kind"] == "agent" else "bot"
    return Entry(
        id=f"m{m['id']}", at=utc(m["created_at"]), kind=kind, body=m["body"] or "",
        media_urls=tuple(m["media_urls"] or ()), status=m["status"],
        agent_name=m["display_name"],
        intent=intent.get("intent") if intent else None,
        confidence=intent.get("confidence") if intent else None,
    )  # fmt: skip


def _marker(e: dict[str, Any]) -> Entry:
    label = _MARKERS[e["type"]] or e["type"]
    data = e["data"] or {}
    if e["type"] == "escalated":
        what = "joined the escalation" if data.get("joined") else "escalated"
        label = f"{what}: {data.get('reason', '?')} ({data.get('priority', 'normal')})"
    return Entry(id=f"e{e['id']}", at=utc(e["at"]), kind="marker", body=label)


# ---- service timers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timers:
    waiting: int  # open escalations with no human answer yet
    open: int
    resolved: int  # resolved since the window began
    first_response_p50_s: float | None
    first_response_p90_s: float | None
    resolution_p50_s: float | None
    resolution_p90_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


async def service_timers(db: Database, *, days: float = 7.0) -> Timers:
    """Time to first human response and to resolution over escalations of the last `days`."""
    return await db.run(_timers, now() - timedelta(days=days))


def _timers(conn: Connection, since: datetime) -> Timers:
    counts = sql.escalation_backlog(conn)
    # only answered or resolved escalations carry durations; the open backlog is counted above
    rows = sql.answered_escalations(conn, since)
    first = [(utc(r["first_response_at"]) - utc(r["created_at"])).total_seconds()
             for r in rows if r["first_response_at"]]  # fmt: skip
    done = [(utc(r["resolved_at"]) - utc(r["created_at"])).total_seconds()
            for r in rows if r["resolved_at"]]  # fmt: skip
    return Timers(
        waiting=counts["waiting"], open=counts["open"], resolved=len(done),
        first_response_p50_s=_pct(first, 50), first_response_p90_s=_pct(first, 90),
        resolution_p50_s=_pct(done, 50), resolution_p90_s=_pct(done, 90),
    )  # fmt: skip


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 1)
