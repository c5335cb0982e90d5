"""Labels' and teaching's SQL: agents' verdicts on bot turns, and the fan texts an FAQ is taught from.

Off the message's path. `bot.teach.service` calls these through `Database.run` (one
transaction each); `fanline train` reads `traffic_labels` for the out-of-scope threshold.
A label is decided once: accept and reject are conditional updates of a `new` row, so two
agents deciding the same suggestion at once cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.storage.db import create_engine, normalise_url
from bot.storage.tables import contacts, conversations, escalations, events, messages
from bot.storage.topic_tables import topic_texts, turn_labels

L = turn_labels.c
COLUMNS = (L.id, L.message_id, L.contact_id, L.agent_id, L.verdict, L.intent, L.predicted,
           L.confidence, L.text, L.status, L.decided_by, L.decided_at, L.created_at)  # fmt: skip


def inbound_turn(conn: Connection, message_id: int) -> dict[str, Any] | None:
    """A fan's inbound text with its profile and what the bot understood (the turn's `intent`
    event), or None when there is no such inbound text."""
    m = messages.c
    row = conn.execute(
        sa.select(m.id, m.contact_id, m.body, contacts.c.profile)
        .select_from(messages.outerjoin(contacts, contacts.c.id == m.contact_id))
        .where(m.id == message_id, m.direction == "in")
    ).first()
    if row is None:
        return None
    intent = conn.execute(
        sa.select(events.c.data)
        .where(events.c.message_id == message_id, events.c.type == "intent")
        .order_by(events.c.id.desc())
        .limit(1)
    ).scalar()
    return {**row._mapping, "understood": intent or {}}


def save_label(conn: Connection, values: dict[str, Any]) -> int:
    """One label per (message, agent): a second verdict replaces the first, as a new suggestion."""
    current = conn.execute(
        sa.select(L.id).where(
            L.message_id == values["message_id"], L.agent_id == values["agent_id"]
        )
    ).scalar()
    fresh = {**values, "status": "new", "decided_by": None, "decided_at": None}
    if current is not None:
        conn.execute(turn_labels.update().where(L.id == current).values(**fresh))
        return int(current)
    try:
        with conn.begin_nested():  # a concurrent first label by the same agent: update theirs
            return int(
                conn.execute(turn_labels.insert().values(**fresh).returning(L.id)).scalar_one()
            )
    except sa.exc.IntegrityError:
        current = conn.execute(
            sa.select(L.id).where(
                L.message_id == values["message_id"], L.agent_id == values["agent_id"]
            )
        ).scalar_one()
        conn.execute(turn_labels.update().where(L.id == current).values(**fresh))
        return int(current)


def get_label(conn: Connection, label_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(*COLUMNS).where(L.id == label_id)).first()
    return dict(row._mapping) if row else None


def list_labels(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = sa.select(*COLUMNS).order_by(L.id.desc()).limit(limit)
    if status is not None:
        query = query.where(L.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


def decide(
    conn: Connection, label_id: int, status: str, agent_id: int, at: datetime,
    intent: str | None = None,
) -> bool:  # fmt: skip
    """Mark a new label accepted or rejected; False when it was decided already. `intent`: the
    intent it was accepted as (an agent may correct it, or turn a hand-over into an example)."""
    values: dict[str, Any] = {"status": status, "decided_by": agent_id, "decided_at": at}
    if intent is not None:
        values.update(intent=intent, verdict="intent")
    done = conn.execute(
        turn_labels.update().where(L.id == label_id, L.status == "new").values(**values)
    )
    return done.rowcount == 1


def undecide(
    conn: Connection, label_id: int, agent_id: int, verdict: str, intent: str | None
) -> None:
    """Back to `new` with the verdict it had (the content edit an accept needed failed)."""
    conn.execute(
        turn_labels.update()
        .where(L.id == label_id, L.decided_by == agent_id, L.status == "accepted")
        .values(status="new", verdict=verdict, intent=intent, decided_by=None, decided_at=None)
    )


def traffic_labels(conn: Connection) -> list[tuple[str, str | None]]:
    """Labelled fan texts not trained on, as (text, intent or None for "hand over"): intent
    verdicts still new (accepted ones are training examples now) and every hand-over verdict
    not rejected."""
    rows = conn.execute(
        sa.select(L.text, L.verdict, L.intent).where(
            sa.or_(
                sa.and_(L.verdict == "intent", L.status == "new"),
                sa.and_(L.verdict == "handover", L.status != "rejected"),
            )
        )
    )
    return [(r.text, r.intent if r.verdict == "intent" else None) for r in rows]


def topic_fan_texts(conn: Connection, topic_id: int) -> list[tuple[str, Any]]:
    """(body, profile) of a topic's texts, oldest first."""
    t, m = topic_texts.c, messages.c
    rows = conn.execute(
        sa.select(m.body, contacts.c.profile)
        .select_from(
            topic_texts.join(messages, m.id == t.message_id).outerjoin(
                contacts, contacts.c.id == m.contact_id
            )
        )
        .where(t.topic_id == topic_id)
        .order_by(t.created_at, t.message_id)
    )
    return [(r.body, r.profile) for r in rows]


def topic_exists(conn: Connection, topic_id: int) -> bool:
    from bot.storage.topic_tables import topics

    return conn.execute(sa.select(topics.c.id).where(topics.c.id == topic_id)).first() is not None


def broadcast_body(
    conn: Connection, *, topic_id: int | None = None, broadcast_id: int | None = None
) -> str | None:
    """The text (template) of the broadcast a topic's texts reply to, or of one broadcast."""
    from bot.storage.broadcast_tables import broadcasts
    from bot.storage.topic_tables import topics

    if topic_id is not None:
        found = conn.execute(sa.select(topics.c.broadcast_id).where(topics.c.id == topic_id))
        broadcast_id = found.scalar()
    if broadcast_id is None:
        return None
    found = conn.execute(sa.select(broadcasts.c.body).where(broadcasts.c.id == broadcast_id))
    return found.scalar()


def thread_fan_texts(conn: Connection, conversation_id: int) -> list[tuple[str, Any]] | None:
    """(body, profile) of the fan's texts in a thread's unresolved escalation, else its last
    one; None when there is no such conversation."""
    conv = conn.execute(
        sa.select(conversations.c.id, contacts.c.profile)
        .select_from(conversations.join(contacts, contacts.c.id == conversations.c.contact_id))
        .where(conversations.c.id == conversation_id)
    ).first()
    if conv is None:
        return None
    e = escalations.c
    escalation = conn.execute(
        sa.select(e.id)
        .where(e.conversation_id == conversation_id)
        .order_by(e.resolved_at.is_(None).desc(), e.id.desc())
        .limit(1)
    ).scalar()
    if escalation is None:
        return []
    m = messages.c
    rows = conn.execute(
        sa.select(m.body).where(m.escalation_id == escalation, m.direction == "in").order_by(m.id)
    )
    return [(r.body, conv.profile) for r in rows]


def read_traffic(url: str) -> list[tuple[str, str | None]] | None:
    """`traffic_labels` of the database at `url`, for `fanline train`: None when it cannot be
    reached, does not exist yet (a SQLite file is never created here) or has no labels table."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    try:
        engine = create_engine(url)
    except Exception:  # a URL for a driver that is not installed, say
        return None
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(turn_labels.name):
                return None
            return traffic_labels(conn)
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
