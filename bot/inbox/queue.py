"""The human queue's rules, as named service functions over the database (one transaction each).

Off the inbound path, on the human side of it: the pipeline opens an escalation and sets the
conversation `open`; from here agents list the queue, claim a thread (exactly one wins: a
conditional UPDATE ... WHERE assignee_id IS NULL), reply (an outbox row, sent by the same sender
after commit), leave private notes, tag the fan, snooze, reassign, and resolve (the fan goes back
to the bot). Every change is recorded in `events`, so a conversation can be replayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.sms import count_segments
from bot.errors import BadRequest, Conflict, NotFound
from bot.inbox.auth import Agent, now, utc
from bot.storage import Database
from bot.storage.inbox_tables import agents
from bot.storage.tables import contacts, conversations, escalations, events, messages

HUMAN = ("open", "snoozed")
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
VIEWS = ("unassigned", "mine", "all", "snoozed")
MAX_BODY = 1600  # Twilio's limit for one message
MAX_TAG = 32
PAGE = 100


@dataclass(frozen=True, slots=True)
class QueueItem:
    conversation_id: int
    contact_id: int
    name: str
    status: str  # open | snoozed (snoozes that ended read as open)
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
    at = now()
    c, e = conversations, escalations
    snoozing = sa.and_(c.c.status == "snoozed", c.c.snoozed_until > at)
    awake = sa.not_(snoozing)
    conditions = {
        "unassigned": sa.and_(awake, c.c.assignee_id.is_(None)),
        "mine": sa.and_(awake, c.c.assignee_id == agent_id),
        "all": sa.true(),
        "snoozed": snoozing,
    }
    in_queue = c.c.status.in_(HUMAN)
    counts = conn.execute(
        sa.select(*[sa.func.count().filter(cond).label(name) for name, cond in conditions.items()])
        .select_from(c)
        .where(in_queue)
    ).one()
    # the newest unresolved escalation of each thread (normally its only one)
    current = (
        sa.select(e.c.conversation_id, sa.func.max(e.c.id).label("id"))
        .where(e.c.resolved_at.is_(None))
        .group_by(e.c.conversation_id)
        .subquery()
    )
    rank = sa.case(
        *[(e.c.priority == p, r) for p, r in PRIORITY_RANK.items()], else_=len(PRIORITY_RANK)
    )
    # sort narrow rows (ids only), then load the page's details: sorting wide rows costs more
    page = conn.execute(
        sa.select(c.c.id.label("cid"), e.c.id.label("eid"))
        .select_from(c)
        .outerjoin(current, current.c.conversation_id == c.c.id)
        .outerjoin(e, e.c.id == current.c.id)
        .where(in_queue, conditions[view])
        .order_by(rank, sa.func.coalesce(e.c.created_at, c.c.updated_at), c.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    rows = _details(conn, page)
    last = _last_messages(conn, [r.contact_id for r in rows])
    items = tuple(_item(r, last.get(r.contact_id), at) for r in rows)
    return QueuePage(view, items, dict(counts._mapping))


def _details(conn: Connection, page: list[Any]) -> list[Any]:
    if not page:
        return []
    c, e = conversations, escalations
    rows = conn.execute(
        sa.select(
            c.c.id, c.c.contact_id, c.c.status, c.c.snoozed_until, c.c.assignee_id,
            c.c.updated_at, contacts.c.profile, e.c.reason, e.c.priority, e.c.guesses,
            e.c.created_at, e.c.first_response_at, agents.c.display_name,
        )
        .select_from(c)
        .join(contacts, contacts.c.id == c.c.contact_id)
        .outerjoin(e, e.c.id.in_([p.eid for p in page if p.eid is not None]) & (e.c.conversation_id == c.c.id))
        .outerjoin(agents, agents.c.id == c.c.assignee_id)
        .where(c.c.id.in_([p.cid for p in page]))
    ).all()  # fmt: skip
    order = {p.cid: i for i, p in enumerate(page)}
    return sorted(rows, key=lambda r: order[r.id])


def _last_messages(conn: Connection, contact_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """Per fan: their newest text (the preview) and whether they spoke last (awaiting a reply)."""
    if not contact_ids:
        return {}
    m = messages.c
    mine = sa.and_(m.contact_id.in_(contact_ids), m.private.is_(False))
    newest = sa.select(sa.func.max(m.id)).where(mine).group_by(m.contact_id)
    newest_in = sa.select(sa.func.max(m.id)).where(mine, m.direction == "in").group_by(m.contact_id)
    rows = conn.execute(
        sa.select(m.id, m.contact_id, m.direction, m.body).where(
            sa.or_(m.id.in_(newest), m.id.in_(newest_in))
        )
    ).all()
    out: dict[int, tuple[str, bool]] = {}
    for r in sorted(rows, key=lambda r: r.id):  # the later row per fan is the newest message
        preview = (r.body or "[media]") if r.direction == "in" else out.get(r.contact_id, ("",))[0]
        out[r.contact_id] = (preview, r.direction == "in")
    return out


def _item(r: Any, last: tuple[str, bool] | None, at: datetime) -> QueueItem:
    since = utc(r.created_at or r.updated_at)
    until = utc(r.first_response_at) if r.first_response_at else at
    snoozed_until = utc(r.snoozed_until) if r.snoozed_until else None
    snoozing = r.status == "snoozed" and snoozed_until is not None and snoozed_until > at
    preview, awaiting = last or ("", False)
    return QueueItem(
        conversation_id=r.id, contact_id=r.contact_id, name=fan_name(r.profile, r.contact_id),
        status="snoozed" if snoozing else "open", reason=r.reason,
        priority=r.priority or "normal",
        guesses=tuple((str(g[0]), float(g[1])) for g in (r.guesses or ())),
        assignee_id=r.assignee_id, assignee_name=r.display_name, waiting_since=since,
        waiting_s=max(0.0, (until - since).total_seconds()), snoozed_until=snoozed_until,
        preview=preview[:140], awaiting_reply=awaiting,
    )  # fmt: skip


def fan_name(profile: dict[str, Any] | None, contact_id: int) -> str:
    first = (profile or {}).get("first_name")
    return str(first) if first else f"Fan #{contact_id}"


# ---- claiming and handing over --------------------------------------------------------------


async def claim(db: Database, conversation_id: int, agent: Agent) -> None:
    """Take an unassigned thread. Under any concurrency exactly one agent wins; others: Conflict."""
    await db.run(_claim, conversation_id, agent)


def _claim(conn: Connection, conversation_id: int, agent: Agent) -> None:
    won = conn.execute(
        conversations.update()
        .where(
            conversations.c.id == conversation_id,
            conversations.c.assignee_id.is_(None),
            conversations.c.status.in_(HUMAN),
        )
        .values(assignee_id=agent.id, updated_at=now())
    ).rowcount
    if won != 1:
        conv = _conversation(conn, conversation_id)
        if conv.assignee_id == agent.id:
            return  # claiming your own thread again changes nothing
        if conv.status not in HUMAN:
            raise Conflict("this fan is with the bot, not waiting for a person")
        raise Conflict("another agent claimed this thread first")
    _assign_escalation(conn, conversation_id, agent.id)
    _event(conn, conv_contact(conn, conversation_id), "claimed", agent)


async def reassign(db: Database, conversation_id: int, agent: Agent, to: int | None) -> None:
    """Hand a thread to another active agent, or back to the unassigned queue (`to=None`)."""

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent)
        if to is not None:
            target = conn.execute(sa.select(agents.c.active).where(agents.c.id == to)).first()
            if target is None or not target.active:
                raise BadRequest("no active agent with that id")
        conn.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(assignee_id=to, updated_at=now())
        )
        _assign_escalation(conn, conversation_id, to)
        _event(conn, conv.contact_id, "reassigned", agent, to=to)

    await db.run(run)


# ---- talking to the fan ----------------------------------------------------------------------


async def reply(db: Database, conversation_id: int, agent: Agent, body: str) -> Sent:
    """Queue the agent's text in the outbox, in the thread's SMS conversation (sent after commit)."""
    body = _text(body)
    return await db.run(_reply, conversation_id, agent, body)


def _reply(conn: Connection, conversation_id: int, agent: Agent, body: str) -> Sent:
    conv = _owned(conn, conversation_id, agent, claim_if_free=True)
    fan = conn.execute(
        sa.select(contacts.c.phone, contacts.c.subscription).where(contacts.c.id == conv.contact_id)
    ).one()
    if fan.phone is None:
        raise Conflict("this fan's data was erased; nothing can be sent")
    if fan.subscription == "unsubscribed":
        raise Conflict("this fan has opted out; nothing can be sent")
    ours = conn.execute(
        sa.select(messages.c.to_number)
        .where(messages.c.contact_id == conv.contact_id, messages.c.direction == "in")
        .order_by(messages.c.id.desc())
        .limit(1)
    ).scalar()  # answer from the number the fan texted
    at = now()
    seg = count_segments(body)
    message_id = conn.execute(
        messages.insert()
        .values(
            contact_id=conv.contact_id, direction="out", to_number=fan.phone, from_number=ours,
            body=body, media_urls=[], kind="agent", status="queued", agent_id=agent.id,
            private=False, segments=seg.count, encoding=seg.encoding, created_at=at,
        )
        .returning(messages.c.id)
    ).scalar_one()  # fmt: skip
    conn.execute(
        escalations.update()
        .where(
            escalations.c.conversation_id == conversation_id,
            escalations.c.resolved_at.is_(None),
            escalations.c.first_response_at.is_(None),
        )
        .values(first_response_at=at)
    )
    if conv.status == "snoozed":  # answering wakes the thread
        conn.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(status="open", snoozed_until=None, updated_at=at)
        )
    _event(conn, conv.contact_id, "agent_replied", agent, message_id=message_id)
    return Sent(message_id, seg.count, seg.encoding)


async def add_note(db: Database, conversation_id: int, agent: Agent, body: str) -> int:
    """A private note in the thread: seen by agents, never sent (any agent may add one)."""
    body = _text(body)

    def run(conn: Connection) -> int:
        conv = _conversation(conn, conversation_id)
        note_id = conn.execute(
            messages.insert()
            .values(
                contact_id=conv.contact_id, direction="out", body=body, media_urls=[],
                kind="note", status="note", agent_id=agent.id, private=True, created_at=now(),
            )
            .returning(messages.c.id)
        ).scalar_one()  # fmt: skip
        _event(conn, conv.contact_id, "note_added", agent, message_id=note_id)
        return note_id

    return await db.run(run)


async def set_tags(
    db: Database, conversation_id: int, agent: Agent, add: Iterable[str], remove: Iterable[str]
) -> list[str]:
    """Add and remove tags on the fan's profile (`fan.tags` in flow conditions)."""
    added, removed = [_tag(t) for t in add], {_tag(t) for t in remove}

    def run(conn: Connection) -> list[str]:
        conv = _conversation(conn, conversation_id)
        profile = dict(
            conn.execute(
                sa.select(contacts.c.profile).where(contacts.c.id == conv.contact_id)
            ).scalar_one()
            or {}
        )
        tags = [t for t in profile.get("tags", []) if t not in removed]
        tags += [t for t in dict.fromkeys(added) if t not in tags]
        profile["tags"] = tags
        conn.execute(
            contacts.update().where(contacts.c.id == conv.contact_id).values(profile=profile)
        )
        _event(conn, conv.contact_id, "tagged", agent, tags=tags)
        return tags

    return await db.run(run)


# ---- ending and pausing ----------------------------------------------------------------------


async def resolve(db: Database, conversation_id: int, agent: Agent) -> None:
    """Done: the conversation goes back to the bot and the escalation's resolution time is set."""

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent, claim_if_free=True)
        at = now()
        conn.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(status="resolved", assignee_id=None, snoozed_until=None, updated_at=at)
        )
        conn.execute(
            escalations.update()
            .where(
                escalations.c.conversation_id == conversation_id,
                escalations.c.resolved_at.is_(None),
            )
            .values(
                resolved_at=at, assignee_id=sa.func.coalesce(escalations.c.assignee_id, agent.id)
            )
        )
        _event(conn, conv.contact_id, "resolved", agent)

    await db.run(run)


async def snooze(db: Database, conversation_id: int, agent: Agent, until: datetime) -> None:
    """Set a thread aside until a time; it comes back earlier if the fan texts again."""
    if utc(until) <= now():
        raise BadRequest("snooze until a time in the future")

    def run(conn: Connection) -> None:
        conv = _owned(conn, conversation_id, agent, claim_if_free=True)
        conn.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(status="snoozed", snoozed_until=utc(until), updated_at=now())
        )
        _event(conn, conv.contact_id, "snoozed", agent, until=utc(until).isoformat())

    await db.run(run)


# ---- shared checks ---------------------------------------------------------------------------


def _conversation(conn: Connection, conversation_id: int) -> Any:
    row = conn.execute(
        sa.select(conversations).where(conversations.c.id == conversation_id)
    ).first()
    if row is None:
        raise NotFound("no such conversation")
    return row


def conv_contact(conn: Connection, conversation_id: int) -> int:
    return int(_conversation(conn, conversation_id).contact_id)


def _owned(
    conn: Connection, conversation_id: int, agent: Agent, *, claim_if_free: bool = False
) -> Any:
    """The thread, if this agent may act on it: its assignee, an admin, or (claiming) anyone."""
    conv = _conversation(conn, conversation_id)
    if conv.status not in HUMAN:
        raise Conflict("this fan is with the bot, not waiting for a person")
    if conv.assignee_id is None and claim_if_free:
        _claim(conn, conversation_id, agent)  # acting on a free thread takes it, atomically
        return _conversation(conn, conversation_id)
    if conv.assignee_id not in (None, agent.id) and not agent.is_admin:
        raise Conflict("this thread belongs to another agent; ask them or an admin to reassign")
    return conv


def _assign_escalation(conn: Connection, conversation_id: int, agent_id: int | None) -> None:
    conn.execute(
        escalations.update()
        .where(
            escalations.c.conversation_id == conversation_id, escalations.c.resolved_at.is_(None)
        )
        .values(assignee_id=agent_id)
    )


def _event(conn: Connection, contact_id: int, kind: str, agent: Agent, **data: Any) -> None:
    conn.execute(
        events.insert().values(
            contact_id=contact_id, message_id=data.get("message_id"), type=kind,
            data={"agent_id": agent.id, **data}, at=now(),
        )
    )  # fmt: skip


def _text(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise BadRequest("the text is empty")
    if len(body) > MAX_BODY:
        raise BadRequest(f"the text is longer than {MAX_BODY} characters")
    return body


def _tag(tag: str) -> str:
    tag = str(tag).strip().lower()
    if not tag or len(tag) > MAX_TAG or not all(ch.isalnum() or ch in "-_" for ch in tag):
        raise BadRequest(f"tags are 1-{MAX_TAG} letters, digits, '-' or '_'")
    return tag
