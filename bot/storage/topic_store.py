"""The topics' SQL: waiting texts to group, topics and their texts, replies to a topic.

Under `bot.topics` (the sweep and the agents' service functions), which compose these into units
of work through `Database.run`; everything here takes the open `Connection` and returns plain
values. Where two callers may race, the statement decides: the sweep holds a transaction-scoped
advisory lock on PostgreSQL (SQLite has one writer anyway), and a reply marks a fan's texts
in its topic done with a conditional UPDATE after locking the escalation and conversation rows
in the order the turn and the escalation timer lock them (escalation first), so of two replies
only one ever texts a fan about one topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from bot.storage.tables import contacts, conversations, escalations, events, messages
from bot.storage.topic_tables import (
    topic_replies,
    topic_reply_fans,
    topic_texts,
    topics,
    turn_labels,
)

Row = dict[str, Any]
tt, tp, e, m, c = topic_texts.c, topics.c, escalations.c, messages.c, conversations.c
SWEEP_LOCK = 0x70_1C_5E  # pg advisory lock key of the topic sweep
GUESS_TEXTS = 200  # texts per topic whose parses make its guesses


def _rows(result: Any) -> list[Row]:
    return [dict(r._mapping) for r in result]


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def try_sweep_lock(conn: Connection, key: int = SWEEP_LOCK) -> bool:
    """One sweep at a time across processes (released at commit); SQLite: always."""
    if not _pg(conn):
        return True
    return bool(conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
                .scalar())  # fmt: skip


def rows_by_id(
    conn: Connection, table: sa.Table, ids: Iterable[int], *, lock: bool = False
) -> dict[int, Row]:
    """Rows of `table` by id (`lock`: FOR UPDATE on PostgreSQL, in id order)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    query = sa.select(table).where(table.c.id.in_(ids)).order_by(table.c.id)
    if lock and _pg(conn):
        query = query.with_for_update()
    return {r["id"]: r for r in _rows(conn.execute(query))}


# ---- the sweep: new waiting texts, open topics ---------------------------------------------


def _waiting_new() -> Any:
    erased = sa.select(contacts.c.id).where(
        contacts.c.id == m.contact_id, contacts.c.erased_at.is_not(None)
    )
    return sa.and_(
        m.direction == "in", m.escalation_id.is_not(None), e.resolved_at.is_(None),
        ~sa.exists().where(tt.message_id == m.id), ~erased.exists(),
    )  # fmt: skip


def new_waiting_texts(conn: Connection, limit: int) -> list[Row]:
    """Fan texts carrying an unresolved escalation that no topic holds yet, oldest first."""
    return _rows(conn.execute(
        sa.select(m.id, m.contact_id, m.escalation_id, m.body, m.created_at, m.broadcast_id)
        .join(escalations, e.id == m.escalation_id)
        .where(_waiting_new())
        .order_by(m.id)
        .limit(limit)
    ))  # fmt: skip


def count_ungrouped(conn: Connection) -> int:
    new = conn.execute(
        sa.select(sa.func.count()).select_from(messages)
        .join(escalations, e.id == m.escalation_id).where(_waiting_new())
    ).scalar_one()  # fmt: skip
    loose = conn.execute(
        sa.select(sa.func.count()).where(tt.topic_id.is_(None), tt.done_at.is_(None))
    ).scalar_one()
    return int(new) + int(loose)


def existing_texts(conn: Connection, message_ids: Sequence[int]) -> set[int]:
    if not message_ids:
        return set()
    return set(conn.execute(sa.select(tt.message_id).where(tt.message_id.in_(list(message_ids))))
               .scalars())  # fmt: skip


def open_centroids(conn: Connection, kind: str) -> list[Row]:
    return _rows(conn.execute(
        sa.select(tp.id, tp.centroid, tp.size)
        .where(tp.status == "open", tp.vector_kind == kind, tp.centroid.is_not(None))
        .order_by(tp.id)
    ))  # fmt: skip


def topic_rows(conn: Connection, ids: Iterable[int], *, lock: bool = False) -> dict[int, Row]:
    return rows_by_id(conn, topics, ids, lock=lock)


def topic_row(conn: Connection, topic_id: int, *, lock: bool = False) -> Row | None:
    return topic_rows(conn, [topic_id], lock=lock).get(topic_id)


def create_topic(conn: Connection, **values: Any) -> int:
    values = {"status": "open", "label": "", "label_pinned": False, "vector_kind": "",
              "size": 0, **values}  # fmt: skip
    values.setdefault("updated_at", values["created_at"])
    return int(conn.execute(topics.insert().values(**values).returning(tp.id)).scalar_one())


def update_topic(conn: Connection, topic_id: int, **values: Any) -> None:
    conn.execute(topics.update().where(tp.id == topic_id).values(**values))


def insert_texts(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        conn.execute(topic_texts.insert(), list(rows))


def text_rows(conn: Connection, message_ids: Sequence[int]) -> list[Row]:
    return _rows(conn.execute(
        sa.select(topic_texts).where(tt.message_id.in_(list(message_ids))).order_by(tt.message_id)
    ))  # fmt: skip


def text_rows_of(conn: Connection, topic_id: int) -> list[Row]:
    return _rows(conn.execute(
        sa.select(tt.message_id, tt.vector).where(tt.topic_id == topic_id).order_by(tt.message_id)
    ))  # fmt: skip


def place_texts(conn: Connection, placed: Sequence[Row]) -> None:
    """[{message_id, topic_id, vector, similarity}]: one executemany."""
    if placed:
        conn.execute(
            topic_texts.update().where(tt.message_id == sa.bindparam("mid"))
            .values(topic_id=sa.bindparam("tid"), vector=sa.bindparam("vec"),
                    similarity=sa.bindparam("sim")),
            [{"mid": p["message_id"], "tid": p["topic_id"], "vec": p["vector"],
              "sim": round(p["similarity"], 4)} for p in placed],
        )  # fmt: skip


def sizes(conn: Connection, topic_ids: Iterable[int]) -> dict[int, int]:
    """Texts per topic (0 for a topic left without any)."""
    ids = sorted(set(topic_ids))
    found = dict(conn.execute(
        sa.select(tt.topic_id, sa.func.count()).where(tt.topic_id.in_(ids)).group_by(tt.topic_id)
    ).all()) if ids else {}  # fmt: skip
    return {i: int(found.get(i, 0)) for i in ids}


def set_similarity(conn: Connection, message_id: int, similarity: float) -> None:
    conn.execute(
        topic_texts.update().where(tt.message_id == message_id).values(similarity=similarity)
    )


def topic_vectors(conn: Connection, topic_id: int) -> list[bytes]:
    """The stored vectors of a topic's texts (done or not): its centroid is their mean."""
    return [v for v in conn.execute(
        sa.select(tt.vector).where(tt.topic_id == topic_id, tt.vector.is_not(None))
        .order_by(tt.message_id)
    ).scalars()]  # fmt: skip


def move_texts(conn: Connection, message_ids: Sequence[int], topic_id: int, **values: Any) -> None:
    conn.execute(
        topic_texts.update().where(tt.message_id.in_(list(message_ids)))
        .values(topic_id=topic_id, **values)
    )  # fmt: skip


def move_all(conn: Connection, from_id: int, into_id: int) -> None:
    conn.execute(topic_texts.update().where(tt.topic_id == from_id).values(topic_id=into_id))


def count_texts(conn: Connection, topic_id: int) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(tt.topic_id == topic_id)).scalar_one())


def regroupable_texts(conn: Connection) -> list[Row]:
    """Waiting texts in open topics (and ungrouped ones) that no agent placed by hand."""
    return _rows(conn.execute(
        sa.select(tt.message_id, tt.topic_id, tt.vector, m.body)
        .join(messages, m.id == tt.message_id)
        .outerjoin(topics, tp.id == tt.topic_id)
        .where(tt.done_at.is_(None), tt.placed_by.is_(None),
               sa.or_(tt.topic_id.is_(None), tp.status == "open"))
        .order_by(tt.message_id)
    ))  # fmt: skip


# ---- done texts, answered topics, labels ---------------------------------------------------


def mark_done(conn: Connection, at: datetime) -> tuple[int, set[int]]:
    """Texts whose escalation was resolved (a thread answered, a reply): done. (How many,
    their topics.)"""
    resolved = sa.select(e.id).where(e.resolved_at.is_not(None), e.id == tt.escalation_id)
    rows = (
        conn.execute(
            topic_texts.update()
            .where(tt.done_at.is_(None), tt.escalation_id.is_not(None), resolved.exists())
            .values(done_at=at)
            .returning(tt.topic_id)
        )
        .scalars()
        .all()
    )
    return len(rows), {t for t in rows if t is not None}


def close_answered(conn: Connection, topic_ids: Iterable[int], at: datetime) -> list[int]:
    """Open topics among these with no waiting text and no running auto-reply: answered."""
    ids = sorted(set(topic_ids))
    if not ids:
        return []
    waiting = sa.select(tt.message_id).where(tt.topic_id == tp.id, tt.done_at.is_(None))
    return list(conn.execute(
        topics.update()
        .where(tp.id.in_(ids), tp.status == "open", ~waiting.exists(),
               sa.or_(tp.auto_until.is_(None), tp.auto_until <= at))
        .values(status="answered", updated_at=at)
        .returning(tp.id)
    ).scalars())  # fmt: skip


def expired_auto_topics(conn: Connection, at: datetime) -> list[int]:
    """Open topics whose auto-reply ran out and that nobody waits in any more."""
    waiting = sa.select(tt.message_id).where(tt.topic_id == tp.id, tt.done_at.is_(None))
    return list(conn.execute(
        sa.select(tp.id).where(tp.status == "open", tp.auto_until.is_not(None),
                               tp.auto_until <= at, ~waiting.exists())
    ).scalars())  # fmt: skip


def unlabelled_topics(conn: Connection) -> list[int]:
    return list(conn.execute(
        sa.select(tp.id).where(tp.status == "open", tp.label == "", tp.label_pinned.is_(False))
    ).scalars())  # fmt: skip


def label_texts(conn: Connection, per_topic: int) -> dict[int, list[str]]:
    """Per open topic, the bodies of up to `per_topic` of its texts (those nearest its centre)."""
    rank = (
        sa.func.row_number()
        .over(partition_by=tt.topic_id, order_by=(tt.similarity.desc().nulls_last(), tt.message_id))
        .label("rank")
    )
    inner = (
        sa.select(tt.topic_id, m.body, rank)
        .join(messages, m.id == tt.message_id).join(topics, tp.id == tt.topic_id)
        .where(tp.status == "open")
        .subquery()
    )  # fmt: skip
    out: dict[int, list[str]] = {}
    for r in conn.execute(
        sa.select(inner.c.topic_id, inner.c.body).where(inner.c.rank <= per_topic)
    ):
        out.setdefault(r.topic_id, []).append(r.body or "")
    return out


def pinned_topics(conn: Connection) -> set[int]:
    return set(conn.execute(sa.select(tp.id).where(tp.label_pinned.is_(True))).scalars())


def set_labels(conn: Connection, labels: dict[int, str]) -> None:
    for topic_id, label in labels.items():
        conn.execute(
            topics.update().where(tp.id == topic_id, tp.label_pinned.is_(False))
            .values(label=label)
        )  # fmt: skip


def refresh_broadcasts(conn: Connection, topic_ids: Iterable[int]) -> None:
    """A topic answers the broadcast most of its texts replied to (messages.broadcast_id)."""
    for topic_id in sorted(set(topic_ids)):
        best = conn.execute(
            sa.select(m.broadcast_id).join(topic_texts, tt.message_id == m.id)
            .where(tt.topic_id == topic_id, m.broadcast_id.is_not(None))
            .group_by(m.broadcast_id).order_by(sa.func.count().desc(), m.broadcast_id).limit(1)
        ).scalar()  # fmt: skip
        conn.execute(topics.update().where(tp.id == topic_id).values(broadcast_id=best))


def refresh_sizes(conn: Connection, topic_ids: Iterable[int]) -> None:
    for topic_id in sorted(set(topic_ids)):
        conn.execute(
            topics.update().where(tp.id == topic_id).values(size=count_texts(conn, topic_id))
        )


# ---- what agents read -----------------------------------------------------------------------


def summaries(
    conn: Connection, *, status: str, order: str, limit: int, topic_ids: Sequence[int] | None = None
) -> list[Row]:
    """Topics with size (texts), fans and oldest arrival: waiting texts of an open topic, all
    texts of the others."""
    counted = tt.done_at.is_(None) if status == "open" else sa.true()
    agg = (
        sa.select(tt.topic_id, sa.func.count().label("texts"),
                  sa.func.count(sa.distinct(tt.contact_id)).label("fans"),
                  sa.func.min(tt.created_at).label("oldest_at"))
        .where(tt.topic_id.is_not(None), counted)
        .group_by(tt.topic_id)
        .subquery()
    )  # fmt: skip
    query = sa.select(topics, agg.c.texts, agg.c.fans, agg.c.oldest_at).outerjoin(
        agg, agg.c.topic_id == tp.id
    )
    if topic_ids is not None:
        query = query.where(tp.id.in_(list(topic_ids)))
    else:
        query = query.where(tp.status == status)
    texts = sa.func.coalesce(agg.c.texts, 0)
    ordering = (
        (agg.c.oldest_at.asc().nulls_last(), texts.desc(), tp.id)
        if order == "wait"
        else (sa.func.coalesce(agg.c.fans, 0).desc(), texts.desc(), tp.id)
    )
    return _rows(conn.execute(query.order_by(*ordering).limit(limit)))


def examples(
    conn: Connection, topic_ids: Sequence[int], per_topic: int, waiting: bool
) -> dict[int, list[str]]:
    if not topic_ids:
        return {}
    rank = (
        sa.func.row_number()
        .over(partition_by=tt.topic_id, order_by=(tt.similarity.desc().nulls_last(), tt.message_id))
        .label("rank")
    )
    inner = (
        sa.select(tt.topic_id, m.body, rank).join(messages, m.id == tt.message_id)
        .where(tt.topic_id.in_(list(topic_ids)), tt.done_at.is_(None) if waiting else sa.true())
        .subquery()
    )  # fmt: skip
    out: dict[int, list[str]] = {}
    for r in conn.execute(
        sa.select(inner.c.topic_id, inner.c.body).where(inner.c.rank <= per_topic)
        .order_by(inner.c.topic_id, inner.c.rank)
    ):  # fmt: skip
        out.setdefault(r.topic_id, []).append(r.body or "")
    return out


def guesses(conn: Connection, topic_ids: Sequence[int], waiting: bool) -> dict[int, list[Any]]:
    """Per topic, each text's own parse (its `intent` event's ranking): a text that only joined
    an escalation is shown as what it said, not as the text that opened it."""
    if not topic_ids:
        return {}
    rank = (
        sa.func.row_number()
        .over(partition_by=tt.topic_id, order_by=(tt.similarity.desc().nulls_last(), tt.message_id))
        .label("rank")
    )
    inner = (
        sa.select(tt.topic_id, tt.message_id, rank)
        .where(tt.topic_id.in_(list(topic_ids)), tt.done_at.is_(None) if waiting else sa.true())
        .subquery()
    )  # fmt: skip
    # a storm's topic holds thousands of texts: those nearest its centre stand for it
    rows = conn.execute(
        sa.select(inner.c.topic_id, inner.c.message_id).where(inner.c.rank <= GUESS_TEXTS)
    ).all()
    parses = text_parses(conn, [r.message_id for r in rows])
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(r.topic_id, []).append(ranking(parses.get(r.message_id)))
    return out


def text_parses(conn: Connection, message_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The NLU's reading of each of these fan texts (the first `intent` event of its turn)."""
    ids = sorted(set(message_ids))
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 1000):  # bounded IN lists
        for r in conn.execute(
            sa.select(events.c.message_id, events.c.data)
            .where(events.c.type == "intent", events.c.message_id.in_(ids[start : start + 1000]))
            .order_by(events.c.id)
        ):  # fmt: skip
            out.setdefault(r.message_id, dict(r.data or {}))
    return out


def ranking(parse: dict[str, Any] | None) -> list[Any]:
    """[[intent, confidence], ...] of a parse: its ranking, else its intent alone, else []."""
    if not parse:
        return []
    if parse.get("ranking"):
        return [list(g) for g in parse["ranking"]]
    return [[parse["intent"], parse.get("confidence") or 0.0]] if parse.get("intent") else []


def counts(conn: Connection) -> dict[str, int]:
    open_topics = conn.execute(
        sa.select(sa.func.count()).select_from(topics).where(tp.status == "open")
    ).scalar_one()
    waiting = conn.execute(
        sa.select(sa.func.count()).select_from(topic_texts).join(topics, tp.id == tt.topic_id)
        .where(tt.done_at.is_(None), tp.status == "open")
    ).scalar_one()  # fmt: skip
    return {"open_topics": int(open_topics), "waiting_texts": int(waiting),
            "ungrouped": count_ungrouped(conn)}  # fmt: skip


def topic_texts_detail(conn: Connection, topic_id: int, limit: int) -> list[Row]:
    return _rows(conn.execute(
        sa.select(tt.message_id, tt.contact_id, tt.similarity, tt.done_at, tt.created_at,
                  m.body, c.id.label("conversation_id"), c.status.label("conversation_status"),
                  c.assignee_id, contacts.c.profile, contacts.c.subscription)
        .join(messages, m.id == tt.message_id)
        .join(contacts, contacts.c.id == tt.contact_id)
        .outerjoin(conversations, c.contact_id == tt.contact_id)
        .where(tt.topic_id == topic_id)
        .order_by(tt.done_at.is_not(None), tt.similarity.desc().nulls_last(), tt.message_id)
        .limit(limit)
    ))  # fmt: skip


def replies_of(conn: Connection, topic_id: int) -> list[Row]:
    return _rows(conn.execute(
        sa.select(topic_replies).where(topic_replies.c.topic_id == topic_id)
        .order_by(topic_replies.c.id)
    ))  # fmt: skip


# ---- replying to a topic ---------------------------------------------------------------------


def reply_by_key(conn: Connection, request_key: str) -> Row | None:
    row = conn.execute(
        sa.select(topic_replies).where(topic_replies.c.request_key == request_key)
    ).first()
    return dict(row._mapping) if row else None


def reply_row(conn: Connection, reply_id: int) -> Row | None:
    row = conn.execute(sa.select(topic_replies).where(topic_replies.c.id == reply_id)).first()
    return dict(row._mapping) if row else None


def insert_reply(conn: Connection, **values: Any) -> int | None:
    """The reply's row; None when its request_key is already taken (a retry, a race)."""
    stmt = (pg_insert if _pg(conn) else sqlite_insert)(topic_replies).values(fans=0, **values)
    if values.get("request_key"):
        stmt = stmt.on_conflict_do_nothing(index_elements=["request_key"])
    return conn.execute(stmt.returning(topic_replies.c.id)).scalar()


def add_reply_fans(conn: Connection, reply_id: int, count: int) -> None:
    conn.execute(
        topic_replies.update().where(topic_replies.c.id == reply_id)
        .values(fans=topic_replies.c.fans + count)
    )  # fmt: skip


def reply_fan_count(conn: Connection, reply_id: int) -> int:
    return int(conn.execute(
        sa.select(sa.func.count()).where(topic_reply_fans.c.reply_id == reply_id)
    ).scalar_one())  # fmt: skip


def waiting_fans(
    conn: Connection, topic_id: int, after_contact: int, limit: int, arrived_by: datetime | None
) -> list[Row]:
    """The next `limit` fans (by id) with a waiting text in the topic whose escalation is still
    unresolved: their escalation, newest text in the topic, conversation and contact."""
    where = [tt.topic_id == topic_id, tt.done_at.is_(None), tt.contact_id > after_contact,
             e.resolved_at.is_(None)]  # fmt: skip
    if arrived_by is not None:
        where.append(tt.created_at <= arrived_by)
    rows = conn.execute(
        sa.select(tt.contact_id, sa.func.max(tt.escalation_id).label("escalation_id"),
                  sa.func.max(tt.message_id).label("message_id"))
        .join(escalations, e.id == tt.escalation_id)
        .where(*where)
        .group_by(tt.contact_id).order_by(tt.contact_id).limit(limit)
    ).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


def lock_escalations(conn: Connection, escalation_ids: Sequence[int]) -> list[Row]:
    """The still unresolved ones among these, locked (PostgreSQL) until the transaction ends."""
    query = (
        sa.select(e.id, e.contact_id, e.conversation_id)
        .where(e.id.in_(list(escalation_ids)), e.resolved_at.is_(None)).order_by(e.id)
    )  # fmt: skip
    if _pg(conn):
        query = query.with_for_update(of=escalations)
    return _rows(conn.execute(query))


def lock_conversations(conn: Connection, conversation_ids: Sequence[int]) -> dict[int, Row]:
    query = (
        sa.select(c.id, c.contact_id, c.status, c.assignee_id)
        .where(c.id.in_(sorted(conversation_ids))).order_by(c.id)
    )  # fmt: skip
    if _pg(conn):
        query = query.with_for_update(of=conversations)
    return {r["id"]: r for r in _rows(conn.execute(query))}


def resolve_escalations(
    conn: Connection, escalation_ids: Sequence[int], agent_id: int, at: datetime
) -> set[int]:
    """Resolve those still unresolved; return the ids this statement resolved (exactly once)."""
    if not escalation_ids:
        return set()
    return set(conn.execute(
        escalations.update()
        .where(e.id.in_(list(escalation_ids)), e.resolved_at.is_(None))
        .values(resolved_at=at, first_response_at=sa.func.coalesce(e.first_response_at, at),
                assignee_id=sa.func.coalesce(e.assignee_id, agent_id))
        .returning(e.id)
    ).scalars())  # fmt: skip


def claim_texts(
    conn: Connection, topic_id: int, escalation_ids: Sequence[int], at: datetime,
    arrived_by: datetime | None,
) -> set[int]:  # fmt: skip
    """Mark done the topic's waiting texts of these escalations; the escalations whose texts
    this statement marked (exactly once: of two replies racing, one marks each fan's texts)."""
    if not escalation_ids:
        return set()
    where = [tt.topic_id == topic_id, tt.escalation_id.in_(list(escalation_ids)),
             tt.done_at.is_(None)]  # fmt: skip
    if arrived_by is not None:
        where.append(tt.created_at <= arrived_by)
    return set(conn.execute(
        topic_texts.update().where(*where).values(done_at=at).returning(tt.escalation_id)
    ).scalars())  # fmt: skip


def still_waiting(conn: Connection, escalation_ids: Sequence[int]) -> set[int]:
    """Those of these escalations with a fan text still waiting for an answer: not done in its
    topic, or not in a topic yet (the sweep has not seen it)."""
    if not escalation_ids:
        return set()
    return set(conn.execute(
        sa.select(m.escalation_id).distinct()
        .outerjoin(topic_texts, tt.message_id == m.id)
        .where(m.escalation_id.in_(list(escalation_ids)), m.direction == "in",
               sa.or_(tt.message_id.is_(None), tt.done_at.is_(None)))
    ).scalars())  # fmt: skip


def fans(conn: Connection, contact_ids: Sequence[int]) -> dict[int, Row]:
    return {r["id"]: r for r in _rows(conn.execute(
        sa.select(contacts.c.id, contacts.c.phone, contacts.c.profile, contacts.c.subscription,
                  contacts.c.erased_at).where(contacts.c.id.in_(list(contact_ids)))
    ))}  # fmt: skip


def our_numbers(conn: Connection, message_ids: Sequence[int]) -> dict[int, str | None]:
    """The number each of these fan texts went to: the reply goes out from it."""
    return {r.id: r.to_number for r in conn.execute(
        sa.select(m.id, m.to_number).where(m.id.in_(list(message_ids)))
    )}  # fmt: skip


def insert_outbox(conn: Connection, rows: Sequence[Row]) -> list[int]:
    if not rows:
        return []
    return [
        int(i)
        for i in conn.execute(
            messages.insert().returning(m.id, sort_by_parameter_order=True), list(rows)
        ).scalars()
    ]


def insert_reply_fans(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        conn.execute(topic_reply_fans.insert(), list(rows))


def add_events(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        conn.execute(events.insert(), list(rows))


def back_to_bot(conn: Connection, conversation_ids: Sequence[int], at: datetime) -> None:
    if conversation_ids:
        conn.execute(
            conversations.update().where(c.id.in_(list(conversation_ids)))
            .values(status="resolved", assignee_id=None, snoozed_until=None, updated_at=at)
        )  # fmt: skip


def active_auto_topics(conn: Connection, at: datetime) -> list[Row]:
    """Open topics whose auto-reply runs at `at`, with a waiting text that arrived before its end."""
    waiting = sa.select(tt.message_id).where(
        tt.topic_id == tp.id, tt.done_at.is_(None), tt.created_at <= tp.auto_until
    )
    return _rows(conn.execute(
        sa.select(tp.id, tp.auto_reply_id, tp.auto_until)
        .where(tp.status == "open", tp.auto_reply_id.is_not(None), tp.auto_until.is_not(None),
               waiting.exists())
        .order_by(tp.id)
    ))  # fmt: skip


# ---- a fan's data (export, erasure) --------------------------------------------------------


def fan_topic_data(conn: Connection, contact_id: int) -> dict[str, Any]:
    texts = _rows(conn.execute(
        sa.select(tt.message_id, tt.topic_id, tt.escalation_id, tt.similarity, tt.created_at,
                  tt.done_at, tp.label.label("topic_label"), m.body)
        .join(messages, m.id == tt.message_id).outerjoin(topics, tp.id == tt.topic_id)
        .where(tt.contact_id == contact_id).order_by(tt.message_id)
    ))  # fmt: skip
    replies = _rows(conn.execute(
        sa.select(topic_reply_fans.c.reply_id, topic_reply_fans.c.message_id,
                  topic_reply_fans.c.auto, topic_reply_fans.c.created_at,
                  topic_replies.c.topic_id, topic_replies.c.body.label("template"),
                  topic_replies.c.agent_id)
        .join(topic_replies, topic_replies.c.id == topic_reply_fans.c.reply_id)
        .where(topic_reply_fans.c.contact_id == contact_id).order_by(topic_reply_fans.c.reply_id)
    ))  # fmt: skip
    labels = _rows(conn.execute(
        sa.select(turn_labels).where(_fan_labels(contact_id)).order_by(turn_labels.c.id)
    ))  # fmt: skip
    return {"texts": texts, "replies": replies, "turn_labels": labels}


def _fan_labels(contact_id: int) -> Any:
    mine = sa.select(m.id).where(m.contact_id == contact_id)
    return sa.or_(turn_labels.c.contact_id == contact_id, turn_labels.c.message_id.in_(mine))


def erase_fan_topics(conn: Connection, contact_id: int) -> None:
    """The fan's texts leave their topics (their vectors go with them) and agents' labels on
    the fan's turns go; the labels of those topics are made again without them at the next
    sweep, unless an agent named them. Replies' rows (ids only) stay: one per fan, still."""
    touched = set(conn.execute(
        sa.select(tt.topic_id).where(tt.contact_id == contact_id, tt.topic_id.is_not(None))
    ).scalars())  # fmt: skip
    conn.execute(topic_texts.delete().where(tt.contact_id == contact_id))
    conn.execute(turn_labels.delete().where(_fan_labels(contact_id)))
    if touched:
        conn.execute(
            topics.update().where(tp.id.in_(sorted(touched)), tp.label_pinned.is_(False))
            .values(label="")
        )  # fmt: skip
        refresh_sizes(conn, touched)
