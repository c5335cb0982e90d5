"""Escalations' SQL: open or join a conversation's escalation, and claim the ones gone unanswered.

Two callers. Step 8 of the message's path (`Store.finish_turn`) opens an escalation, or joins
the one the conversation already has (a conversation holds at most one unresolved escalation,
so a fan who keeps asking what the bot cannot answer never opens a second ticket). Off the
path, the escalation timer (`bot.escalation.EscalationTimer`) claims escalations nobody
answered in time: one conditional UPDATE ... RETURNING (with SKIP LOCKED on PostgreSQL), so of
several processes sweeping at once exactly one wins each escalation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain import EscalationSpec, higher_priority
from bot.storage.tables import contacts, conversations, escalations, events, messages

e, c = escalations.c, conversations.c


def _unresolved(conn: Connection, conversation_id: int) -> Any:
    query = (
        sa.select(e.id, e.priority, e.missed_at)
        .where(e.conversation_id == conversation_id, e.resolved_at.is_(None))
        .order_by(e.id.desc())
        .limit(1)
    )
    if conn.dialect.name == "postgresql":  # a sweep skips it meanwhile, or we wait for the sweep
        query = query.with_for_update()
    return conn.execute(query).first()


def open_or_join(
    conn: Connection, contact_id: int, conversation_id: int, message_id: int,
    spec: EscalationSpec, at: datetime,
) -> tuple[int, bool]:  # fmt: skip
    """(escalation id, joined): a new escalation, or the text joins the unresolved one."""
    current = _unresolved(conn, conversation_id)
    if current is None:
        escalation_id = conn.execute(
            escalations.insert()
            .values(
                contact_id=contact_id, conversation_id=conversation_id, message_id=message_id,
                reason=spec.reason, priority=spec.priority,
                guesses=[list(g) for g in spec.guesses], created_at=at, due_at=spec.due_at,
            )
            .returning(e.id)
        ).scalar_one()  # fmt: skip
        joined = False
    else:
        escalation_id, joined = current.id, True
        values: dict[str, Any] = {"priority": higher_priority(current.priority, spec.priority)}
        if current.missed_at is not None:  # missed, then asked again: it waits again
            values.update(missed_at=None, due_at=spec.due_at)
        conn.execute(escalations.update().where(e.id == escalation_id).values(**values))
    attach(conn, escalation_id, message_id)
    # waiting for a person, unless an agent took the thread meanwhile (then it stays theirs)
    conn.execute(
        conversations.update()
        .where(c.id == conversation_id, c.status.not_in(("open", "snoozed")))
        .values(status=sa.case((c.assignee_id.is_(None), "waiting"), else_="open"))
    )
    return int(escalation_id), joined


def attach_to_current(conn: Connection, conversation_id: int, message_id: int) -> None:
    """A text held for the agent belongs to the thread's unresolved escalation, if any."""
    current = conn.execute(
        sa.select(sa.func.max(e.id)).where(
            e.conversation_id == conversation_id, e.resolved_at.is_(None)
        )
    ).scalar()
    if current is not None:
        attach(conn, current, message_id)


def attach(conn: Connection, escalation_id: int, message_id: int) -> None:
    conn.execute(
        messages.update().where(messages.c.id == message_id).values(escalation_id=escalation_id)
    )


def escalation_texts(conn: Connection, escalation_id: int) -> list[dict[str, Any]]:
    """The fan's texts that make up one escalation, oldest first (the one that opened it first)."""
    m = messages.c
    rows = conn.execute(
        sa.select(m.id, m.body, m.created_at, m.status)
        .where(m.escalation_id == escalation_id)
        .order_by(m.id)
    ).all()
    return [dict(r._mapping) for r in rows]


# ---- the timer: escalations nobody answered in time ----------------------------------------


def claim_missed(conn: Connection, at: datetime, limit: int) -> list[dict[str, Any]]:
    """Mark up to `limit` due, unclaimed, unanswered escalations missed; return them with what
    the follow-up needs. Exactly one concurrent caller gets each row."""
    due = (
        sa.select(e.id)
        .join(conversations, c.id == e.conversation_id)
        .where(
            e.resolved_at.is_(None), e.missed_at.is_(None), e.first_response_at.is_(None),
            e.due_at.is_not(None), e.due_at <= at, c.status == "waiting",
            c.assignee_id.is_(None),
        )
        .order_by(e.due_at)
        .limit(limit)
    )  # fmt: skip
    if conn.dialect.name == "postgresql":  # rows a turn or a claim is changing: next sweep
        due = due.with_for_update(of=[escalations, conversations], skip_locked=True)
    claimed = conn.execute(
        escalations.update()
        .where(e.id.in_(due.scalar_subquery()), e.missed_at.is_(None))
        .values(missed_at=at)
        .returning(e.id, e.contact_id, e.conversation_id, e.priority, e.reason)
    ).all()
    if not claimed:
        return []
    ids = [r.conversation_id for r in claimed]
    conn.execute(
        conversations.update()
        .where(c.id.in_(ids), c.status == "waiting", c.assignee_id.is_(None))
        .values(status="missed", updated_at=at)
    )
    fans = {
        r.id: r
        for r in conn.execute(
            sa.select(
                contacts.c.id, contacts.c.phone, contacts.c.profile, contacts.c.subscription
            ).where(contacts.c.id.in_([r.contact_id for r in claimed]))
        )
    }
    return [{**r._mapping, "fan": dict(fans[r.contact_id]._mapping)} for r in claimed]


def last_inbound(conn: Connection, contact_id: int) -> tuple[int | None, str | None]:
    """(the fan's newest text's id, our number it went to): the follow-up answers it from there."""
    row = conn.execute(
        sa.select(messages.c.id, messages.c.to_number)
        .where(messages.c.contact_id == contact_id, messages.c.direction == "in")
        .order_by(messages.c.id.desc())
        .limit(1)
    ).first()
    return (row.id, row.to_number) if row else (None, None)


def add_event(conn: Connection, contact_id: int, kind: str, data: dict[str, Any], at: datetime,
              message_id: int | None = None) -> None:  # fmt: skip
    conn.execute(events.insert().values(contact_id=contact_id, message_id=message_id, type=kind,
                                        data=data, at=at))  # fmt: skip
