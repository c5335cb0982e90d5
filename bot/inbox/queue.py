"""The human queue's rules, as named service functions over the database (one transaction each).

Off the inbound path, on the human side of it: the pipeline opens an escalation and the
conversation is `waiting` (the bot still answers what it can; more hand-offs join the same
escalation); the escalation timer marks it `missed` if nobody answers in time. From here agents
list the queue, claim a thread (exactly one wins: a conditional UPDATE ... WHERE assignee_id IS
NULL; the thread is `open` and the bot goes quiet), reply (an outbox row, sent by the same sender
after commit), leave private notes, tag the fan, snooze, reassign, and resolve (the fan goes back
to the bot). Every change is recorded in `events`, so a conversation can be replayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.audience.tags import normalise_tag
from bot.errors import BadRequest, Conflict, NotFound
from bot.inbox.auth import Agent, now, utc
from bot.sms import count_segments
from bot.storage import Database, tag_store
from bot.storage import inbox_store as sql
from bot.storage.db import Connection

HUMAN = sql.HUMAN
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
VIEWS = ("unassigned", "mine", "all", "snoozed", "missed")
MAX_BODY = 1600  # Twilio's limit for one message
MAX_TAG = 32
PAGE = 100


@dataclass(frozen=True, slots=True)
class QueueItem:
    conversation_id: int
    contact_id: int
    name: str
    status: str  # waiting | open | snoozed | missed (snoozes that ended read as open)
    reason: str | None
    priority: str
    guesses: tuple[tuple[str, float], ...]
    assignee_id: int | None
    assignee_name: str | None
    waiting_since: datetime
    waiting_s: float  # until the first human response, or until now
    snoozed_until: datetime | None
    preview: str
    awaiting_reply: bool  # the fan spoke last
    due_at: datetime | None = None  # unanswered by then, the escalation is missed
    missed_at: datetime | None = None
    opted_out: bool = False  # the fan unsubscribed: no reply can be sent (not in Unassigned)

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "contact_id": self.contact_id,
            "name": self.name, "status": self.status, "reason": self.reason,
            "priority": self.priority, "guesses": [list(g) for g in self.guesses],
            "assignee": {"id": self.assignee_id, "name": self.assignee_name}
            if self.assignee_id else None,
            "waiting_since": self.waiting_since.isoformat(), "waiting_s": round(self.waiting_s),
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "preview": self.preview, "awaiting_reply": self.awaiting_reply,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "missed_at": self.missed_at.isoformat() if self.missed_at else None,
            "opted_out": self.opted_out,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueuePage:
    view: str
    items: tuple[QueueItem, ...]
    counts: dict[str, int] = field(default_factory=dict)  # per view, for the tabs

    @property
    def total(self) -> int:
        return self.counts.get(self.view, 0)


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: int
    segments: int
    encoding: str


# ---- listing -------------------------------------------------------------------------------


async def list_queue(
    db: Database, view: str, agent: Agent, *, limit: int = PAGE, offset: int = 0
) -> QueuePage:
    """Threads a human owns or should, most urgent first, then longest waiting first."""
    if view not in VIEWS:
        raise BadRequest(f"view must be one of {', '.join(VIEWS)}")
    return await db.run(_list_queue, view, agent.id, max(1, min(limit, 500)), max(0, offset))


def _list_queue(conn: Connection, view: str, agent_id: int, limit: int, offset: int) -> QueuePage:
    """The unit of work behind `list_queue`, without its page-size cap (the benchmark's way in)."""
    at = now()
    counts, rows = sql.queue_page(conn, view, agent_id, limit, offset, at, PRIORITY_RANK)
    last = sql.last_messages(conn, [r["contact_id"] for r in rows])
    items = tuple(_item(r, last.get(r["contact_id"]), at) for r in rows)
    return QueuePage(view, items, counts)


def _item(r: dict[str, Any], last: tuple[str, bool] | None, at: datetime) -> QueueItem:
    since = utc(r["created_at"] or r["updated_at"])
    until = utc(r["first_response_at"]) if r["first_response_at"] else at
    snoozed_until = utc(r["snoozed_until"]) if r["snoozed_until"] else None
    snoozing = r["status"] == "snoozed" and snoozed_until is not None and snoozed_until > at
    preview, awaiting = last or ("", False)
    status = "open" if r["status"] == "snoozed" and not snoozing else r["status"]
    return QueueItem(
        conversation_id=r["id"], contact_id=r["contact_id"],
        name=fan_name(r["profile"], r["contact_id"]),
        status=status, reason=r["reason"],
        priority=r["priority"] or "normal",
        guesses=tuple((str(g[0]), float(g[1])) for g in (r["guesses"] or ())),
        assignee_id=r["assignee_id"], assignee_name=r["display_name"], waiting_since=since,
        waiting_s=max(0.0, (until - since).total_seconds()), snoozed_until=snoozed_until,
        preview=preview[:140], awaiting_reply=awaiting,
        due_at=utc(r["due_at"]) if r["due_at"] else None,
        missed_at=utc(r["missed_at"]) if r["missed_at"] else None,
        opted_out=r["subscription"] == "unsubscribed",
    )  # fmt: skip


def fan_name(profile: dict[str, Any] | None, contact_id: int) -> str:
    first = (profile or {}).get("first_name")
    return str(first) if first else f"Fan #{contact_id}"


# ---- claiming and handing over --------------------------------------------------------------


async def claim(db: Database, conversation_id: int, agent: Agent) -> None:
    """Take an unassigned thread. Under any concurrency exactly one agent wins; others: Conflict."""
    await db.run(_claim, conversation_id, agent)


def _claim(conn: Connection, conversation_id: int, agent: Agent) -> None:
    sql.lock_thread(conn, conversation_id)
    if not sql.take_if_free(conn, conversation_id, agent.id, now()):
        conv = _conversation(conn, conversation_id)
        if conv["assignee_id"] == agent.id:
            return  # claiming your own thread again changes nothing
        if conv["status"] not in HUMAN:
            raise Conflict("this fan is with the bot, not waiting for a person")
        raise Conflict("another agent claimed this thread first")
    sql.assign_escalation(conn, conversation_id, agent.id)
    _event(conn, conv_contact(conn, conversation_id), "claimed", agent)


async def reassign(db: Database, conversation_id: int, agent: Agent, to: int | None) -> None:
    """Hand a thread to another active agent, or back to the unassigned queue (`to=None`)."""

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent)
        if to is not None and not sql.agent_is_active(conn, to):
            raise BadRequest("no active agent with that id")
        status = conv["status"]
        if to is None and status == "open":
            status = "waiting"  # back in the queue: the bot answers what it can meanwhile
        elif to is not None and status in ("waiting", "missed"):
            status = "open"
        sql.update_conversation(
            conn, conversation_id, assignee_id=to, status=status, updated_at=now()
        )
        sql.assign_escalation(conn, conversation_id, to)
        _event(conn, conv["contact_id"], "reassigned", agent, to=to)

    await db.run(run)


# ---- talking to the fan ----------------------------------------------------------------------


async def reply(db: Database, conversation_id: int, agent: Agent, body: str) -> Sent:
    """Queue the agent's text in the outbox, in the thread's SMS conversation (sent after commit)."""
    body = agent_text(body)
    return await db.run(_reply, conversation_id, agent, body)


def _reply(conn: Connection, conversation_id: int, agent: Agent, body: str) -> Sent:
    conv = _owned(conn, conversation_id, agent, claim_if_free=True)
    fan = sql.contact(conn, conv["contact_id"])
    if fan["phone"] is None:
        raise Conflict("this fan's data was erased; nothing can be sent")
    if fan["subscription"] == "unsubscribed":
        raise Conflict("this fan has opted out; nothing can be sent")
    ours = sql.last_inbound_number(conn, conv["contact_id"])  # answer from the number they texted
    at = now()
    seg = count_segments(body)
    message_id = sql.insert_message(
        conn, contact_id=conv["contact_id"], direction="out", to_number=fan["phone"],
        from_number=ours, body=body, media_urls=[], kind="agent", status="queued",
        agent_id=agent.id, private=False, segments=seg.count, encoding=seg.encoding,
        created_at=at,
    )  # fmt: skip
    sql.mark_first_response(conn, conversation_id, at)
    if conv["status"] == "snoozed":  # answering wakes the thread
        sql.update_conversation(
            conn, conversation_id, status="open", snoozed_until=None, updated_at=at
        )
    _event(conn, conv["contact_id"], "agent_replied", agent, message_id=message_id)
    return Sent(message_id, seg.count, seg.encoding)


async def add_note(db: Database, conversation_id: int, agent: Agent, body: str) -> int:
    """A private note in the thread: seen by agents, never sent (any agent may add one)."""
    body = agent_text(body)

    def run(conn: Connection) -> int:
        conv = _conversation(conn, conversation_id)
        note_id = sql.insert_message(
            conn, contact_id=conv["contact_id"], direction="out", body=body, media_urls=[],
            kind="note", status="note", agent_id=agent.id, private=True, created_at=now(),
        )  # fmt: skip
        _event(conn, conv["contact_id"], "note_added", agent, message_id=note_id)
        return note_id

    return await db.run(run)


async def set_tags(
    db: Database, conversation_id: int, agent: Agent, add: Iterable[str], remove: Iterable[str]
) -> list[str]:
    """Add and remove the fan's tags (fan_tags, source `agent`; `fan.tags` in flow conditions,
    segments' `tags`)."""
    added, removed = [_tag(t) for t in add], {_tag(t) for t in remove}

    def run(conn: Connection) -> list[str]:
        contact_id = _conversation(conn, conversation_id)["contact_id"]
        tag_store.remove_tags(conn, contact_id, removed)
        tags = tag_store.add_tags(conn, contact_id, [t for t in added if t not in removed],
                                  "agent", now())  # fmt: skip
        _event(conn, contact_id, "tagged", agent, tags=tags)
        return tags

    return await db.run(run)


# ---- ending and pausing ----------------------------------------------------------------------


async def resolve(db: Database, conversation_id: int, agent: Agent) -> None:
    """Done: the conversation goes back to the bot and the escalation's resolution time is set."""

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent, claim_if_free=True)
        at = now()
        sql.update_conversation(
            conn, conversation_id, status="resolved", assignee_id=None, snoozed_until=None,
            updated_at=at,
        )  # fmt: skip
        sql.resolve_escalations(conn, conversation_id, agent.id, at)
        _event(conn, conv["contact_id"], "resolved", agent)

    await db.run(run)


async def snooze(db: Database, conversation_id: int, agent: Agent, until: datetime) -> None:
    """Set a thread aside until a time; it comes back earlier if the fan texts again."""
    if utc(until) <= now():
        raise BadRequest("snooze until a time in the future")

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent, claim_if_free=True)
        sql.update_conversation(
            conn, conversation_id, status="snoozed", snoozed_until=utc(until), updated_at=now()
        )
        _event(conn, conv["contact_id"], "snoozed", agent, until=utc(until).isoformat())

    await db.run(run)


# ---- shared checks ---------------------------------------------------------------------------


def _conversation(conn: Connection, conversation_id: int) -> dict[str, Any]:
    row = sql.conversation(conn, conversation_id)
    if row is None:
        raise NotFound("no such conversation")
    return row


def conv_contact(conn: Connection, conversation_id: int) -> int:
    return int(_conversation(conn, conversation_id)["contact_id"])


def _owned(
    conn: Connection, conversation_id: int, agent: Agent, *, claim_if_free: bool = False
) -> dict[str, Any]:
    """The thread, if this agent may act on it: its assignee, an admin, or (claiming) anyone."""
    sql.lock_thread(conn, conversation_id)
    conv = _conversation(conn, conversation_id)
    if conv["status"] not in HUMAN:
        raise Conflict("this fan is with the bot, not waiting for a person")
    if conv["assignee_id"] is None and claim_if_free:
        _claim(conn, conversation_id, agent)  # acting on a free thread takes it, atomically
        return _conversation(conn, conversation_id)
    if conv["assignee_id"] not in (None, agent.id) and not agent.is_admin:
        raise Conflict("this thread belongs to another agent; ask them or an admin to reassign")
    return conv


def _event(conn: Connection, contact_id: int, kind: str, agent: Agent, **data: Any) -> None:
    sql.add_event(
        conn, contact_id, kind, {"agent_id": agent.id, **data}, now(), data.get("message_id")
    )


def agent_text(body: str) -> str:
    """An agent's text to a fan, checked: not empty, within one Twilio message."""
    body = (body or "").strip()
    if not body:
        raise BadRequest("the text is empty")
    if len(body) > MAX_BODY:
        raise BadRequest(f"the text is longer than {MAX_BODY} characters")
    return body


def _tag(tag: str) -> str:
    try:
        return normalise_tag(tag)
    except ValueError:
        raise BadRequest(f"tags are 1-{MAX_TAG} letters, digits, '-' or '_'") from None
