"""The bot answers' SQL: answered broadcast replies to group, answer groups, corrections.

Under `bot.topics.review` and `bot.topics.review_sweep`, which compose these into units of work
through `Database.run`; everything here takes the open `Connection` and returns plain values.
Where two callers may race, the statement decides: the answer sweep holds a transaction-scoped
advisory lock on PostgreSQL, each chunk of a correction locks its group's row first (so two
corrections of one group, or a correction and a move, take turns) and claims the fans' texts
with a conditional `UPDATE ... WHERE correction_id IS NULL`, so only one correction texts a fan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from bot.storage.broadcast_tables import broadcasts
from bot.storage.review_tables import (
    answer_correction_fans,
    answer_corrections,
    answer_groups,
    answer_texts,
)
from bot.storage.tables import contacts, events, messages

# what a correction shares with a topic reply: reading fans and numbers, writing the outbox
from bot.storage.topic_store import (  # noqa: F401  (re-exported for bot.topics.review)
    Row,
    _pg,
    _rows,
    add_events,
    fans,
    insert_outbox,
    our_numbers,
    rows_by_id,
)
from bot.storage.topic_store import try_sweep_lock as _try_lock

at_, g, m, ev = answer_texts.c, answer_groups.c, messages.c, events.c
ac, acf = answer_corrections.c, answer_correction_fans.c
SWEEP_LOCK = 0x70_1C_5F  # pg advisory lock key of the answer sweep (the topic sweep's + 1)
# the event types of a turn that the bot did not answer alone
NOT_ANSWERED = ("escalated", "held_for_human", "ignored")


def try_sweep_lock(conn: Connection) -> bool:
    return _try_lock(conn, SWEEP_LOCK)


# ---- the sweep ------------------------------------------------------------------------------


def new_answered(conn: Connection, limit: int) -> list[Row]:
    """Fan texts within a broadcast's reply window that the bot answered (an `utter` event, no
    hand-off) and no answer group holds yet, oldest first."""
    erased = sa.select(contacts.c.id).where(
        contacts.c.id == m.contact_id, contacts.c.erased_at.is_not(None)
    )
    uttered = sa.select(ev.id).where(ev.message_id == m.id, ev.type == "utter")
    return _rows(conn.execute(
        sa.select(m.id, m.contact_id, m.body, m.created_at, m.broadcast_id)
        .where(m.direction == "in", m.broadcast_id.is_not(None), m.escalation_id.is_(None),
               m.status == "processed", uttered.exists(),
               ~sa.exists().where(at_.message_id == m.id), ~erased.exists())
        .order_by(m.id)
        .limit(limit)
    ))  # fmt: skip


def turn_events(conn: Connection, message_ids: Sequence[int]) -> dict[int, list[tuple[str, Any]]]:
    """Per inbound text, its turn's events (type, data) in order."""
    out: dict[int, list[tuple[str, Any]]] = {i: [] for i in message_ids}
    if message_ids:
        for r in conn.execute(
            sa.select(ev.message_id, ev.type, ev.data)
            .where(ev.message_id.in_(list(message_ids))).order_by(ev.id)
        ):  # fmt: skip
            out.setdefault(r.message_id, []).append((r.type, r.data or {}))
    return out


def existing(conn: Connection, message_ids: Sequence[int]) -> set[int]:
    if not message_ids:
        return set()
    return set(conn.execute(sa.select(at_.message_id).where(at_.message_id.in_(list(message_ids))))
               .scalars())  # fmt: skip


def joinable_centroids(conn: Connection, kind: str) -> list[Row]:
    """Groups new texts may join: open ones, and ones marked right (the answer is right for
    texts that mean the same)."""
    return _rows(conn.execute(
        sa.select(g.id, g.centroid, g.size, g.response, g.status)
        .where(g.status.in_(("open", "right")), g.vector_kind == kind, g.centroid.is_not(None))
        .order_by(g.id)
    ))  # fmt: skip


def group_rows(conn: Connection, ids: Iterable[int], *, lock: bool = False) -> dict[int, Row]:
    return rows_by_id(conn, answer_groups, ids, lock=lock)


def group_row(conn: Connection, group_id: int, *, lock: bool = False) -> Row | None:
    return group_rows(conn, [group_id], lock=lock).get(group_id)


def create_group(conn: Connection, **values: Any) -> int:
    values = {"status": "open", "label": "", "vector_kind": "", "size": 0, **values}
    values.setdefault("updated_at", values["created_at"])
    return int(conn.execute(answer_groups.insert().values(**values).returning(g.id)).scalar_one())


def update_group(conn: Connection, group_id: int, **values: Any) -> None:
    conn.execute(answer_groups.update().where(g.id == group_id).values(**values))


def insert_texts(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        conn.execute(answer_texts.insert(), list(rows))


def unlabelled(conn: Connection) -> list[int]:
    return list(conn.execute(
        sa.select(g.id).where(g.status.in_(("open", "right")), g.label == "")
    ).scalars())  # fmt: skip


def label_texts(conn: Connection, group_ids: Sequence[int], per_group: int) -> dict[int, list[str]]:
    """Per group, the bodies of up to `per_group` of its texts (nearest its centre first)."""
    out: dict[int, list[str]] = {i: [] for i in group_ids}
    for r in _ranked(conn, group_ids, per_group, waiting=False):
        out[r["group_id"]].append(r["body"] or "")
    return out


def _ranked(conn: Connection, group_ids: Sequence[int], n: int, *, waiting: bool) -> list[Row]:
    if not group_ids:
        return []
    rank = (
        sa.func.row_number()
        .over(partition_by=at_.group_id,
              order_by=(at_.similarity.desc().nulls_last(), at_.message_id))
        .label("rank")
    )  # fmt: skip
    inner = (
        sa.select(at_.group_id, at_.message_id, m.body, rank).join(messages, m.id == at_.message_id)
        .where(at_.group_id.in_(list(group_ids)), at_.done_at.is_(None) if waiting else sa.true())
        .subquery()
    )  # fmt: skip
    return _rows(conn.execute(
        sa.select(inner.c.group_id, inner.c.message_id, inner.c.body)
        .where(inner.c.rank <= n).order_by(inner.c.group_id, inner.c.rank)
    ))  # fmt: skip


def set_labels(conn: Connection, labels: dict[int, str]) -> None:
    for group_id, label in labels.items():
        conn.execute(answer_groups.update().where(g.id == group_id).values(label=label))


def refresh_sizes(conn: Connection, group_ids: Iterable[int], at: datetime) -> None:
    for group_id in sorted(set(group_ids)):
        size = conn.execute(sa.select(sa.func.count()).where(at_.group_id == group_id)).scalar_one()
        conn.execute(
            answer_groups.update().where(g.id == group_id).values(size=int(size), updated_at=at)
        )


# ---- what agents read -----------------------------------------------------------------------


def summaries(
    conn: Connection, *, statuses: Sequence[str], limit: int, ids: Sequence[int] | None = None
) -> list[Row]:
    """Groups with their texts, fans, reviewed texts and first arrival; most fans first."""
    agg = (
        sa.select(at_.group_id, sa.func.count().label("texts"),
                  sa.func.count(sa.distinct(at_.contact_id)).label("fans"),
                  sa.func.count(at_.done_at).label("reviewed"),
                  sa.func.count(at_.correction_id).label("corrected"),
                  sa.func.min(at_.created_at).label("first_at"))
        .where(at_.group_id.is_not(None)).group_by(at_.group_id).subquery()
    )  # fmt: skip
    query = (
        sa.select(answer_groups, agg.c.texts, agg.c.fans, agg.c.reviewed, agg.c.corrected,
                  agg.c.first_at, broadcasts.c.name.label("broadcast_name"))
        .outerjoin(agg, agg.c.group_id == g.id)
        .outerjoin(broadcasts, broadcasts.c.id == g.broadcast_id)
    )  # fmt: skip
    query = (
        query.where(g.id.in_(list(ids)))
        if ids is not None
        else query.where(g.status.in_(list(statuses)), sa.func.coalesce(agg.c.texts, 0) > 0)
    )
    return _rows(conn.execute(query.order_by(
        sa.func.coalesce(agg.c.fans, 0).desc(), g.id).limit(limit)))  # fmt: skip


def examples(conn: Connection, group_ids: Sequence[int], per_group: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in _ranked(conn, group_ids, per_group, waiting=False):
        out.setdefault(r["group_id"], []).append(r["body"] or "")
    return out


def answers(conn: Connection, group_ids: Sequence[int]) -> dict[int, str]:
    """Per group, the text the bot sent to its most central fan text (what fans were told)."""
    central = {r["group_id"]: r["message_id"] for r in _ranked(conn, group_ids, 1, waiting=False)}
    if not central:
        return {}
    said: dict[int, list[str]] = {}
    for r in conn.execute(
        sa.select(m.reply_to, m.body).where(
            m.reply_to.in_(list(central.values())), m.direction == "out",
            m.kind.in_(("reply", "compliance")),
        ).order_by(m.id)
    ):  # fmt: skip
        said.setdefault(r.reply_to, []).append(r.body or "")
    return {gid: "\n".join(said.get(mid, [])) for gid, mid in central.items()}


def counts(conn: Connection) -> dict[str, int]:
    """{"open_groups", "texts" (in open groups)}."""
    groups = conn.execute(
        sa.select(sa.func.count()).select_from(answer_groups).where(g.status == "open")
    ).scalar_one()
    texts = conn.execute(
        sa.select(sa.func.count()).select_from(answer_texts)
        .join(answer_groups, g.id == at_.group_id).where(g.status == "open")
    ).scalar_one()  # fmt: skip
    return {"open_groups": int(groups), "texts": int(texts)}


def group_texts(conn: Connection, group_id: int, limit: int) -> list[Row]:
    return _rows(conn.execute(
        sa.select(at_.message_id, at_.contact_id, at_.similarity, at_.intent, at_.confidence,
                  at_.done_at, at_.correction_id, at_.created_at, at_.placed_by, m.body,
                  contacts.c.profile)
        .join(messages, m.id == at_.message_id)
        .join(contacts, contacts.c.id == at_.contact_id)
        .where(at_.group_id == group_id)
        .order_by(at_.similarity.desc().nulls_last(), at_.message_id)
        .limit(limit)
    ))  # fmt: skip


def fan_texts(conn: Connection, group_id: int) -> list[tuple[str, Any]]:
    """(body, profile) of a group's texts, oldest first (what teaching learns from)."""
    return [(r.body, r.profile) for r in conn.execute(
        sa.select(m.body, contacts.c.profile)
        .select_from(answer_texts.join(messages, m.id == at_.message_id)
                     .outerjoin(contacts, contacts.c.id == at_.contact_id))
        .where(at_.group_id == group_id).order_by(at_.created_at, at_.message_id)
    )]  # fmt: skip


def corrections_of(conn: Connection, group_id: int) -> list[Row]:
    return _rows(conn.execute(
        sa.select(answer_corrections).where(ac.group_id == group_id).order_by(ac.id)
    ))  # fmt: skip


def text_rows(conn: Connection, message_ids: Sequence[int]) -> list[Row]:
    return _rows(conn.execute(
        sa.select(answer_texts).where(at_.message_id.in_(list(message_ids)))
        .order_by(at_.message_id)
    ))  # fmt: skip


def group_vectors(conn: Connection, group_id: int) -> list[bytes]:
    return list(conn.execute(
        sa.select(at_.vector).where(at_.group_id == group_id, at_.vector.is_not(None))
        .order_by(at_.message_id)
    ).scalars())  # fmt: skip


def move_texts(conn: Connection, message_ids: Sequence[int], group_id: int, agent_id: int) -> None:
    conn.execute(
        answer_texts.update().where(at_.message_id.in_(list(message_ids)))
        .values(group_id=group_id, placed_by=agent_id)
    )  # fmt: skip


def review(conn: Connection, group_id: int, at: datetime) -> int:
    """The group's texts not reviewed yet: reviewed now. How many."""
    return int(conn.execute(
        answer_texts.update().where(at_.group_id == group_id, at_.done_at.is_(None))
        .values(done_at=at)
    ).rowcount or 0)  # fmt: skip


# ---- a correction ---------------------------------------------------------------------------


def correction_by_key(conn: Connection, request_key: str) -> Row | None:
    row = conn.execute(sa.select(answer_corrections).where(ac.request_key == request_key)).first()
    return dict(row._mapping) if row else None


def insert_correction(conn: Connection, **values: Any) -> int | None:
    """The correction's row; None when its request_key is already taken (a retry, a race)."""
    stmt = (pg_insert if _pg(conn) else sqlite_insert)(answer_corrections).values(fans=0, **values)
    if values.get("request_key"):
        stmt = stmt.on_conflict_do_nothing(index_elements=["request_key"])
    return conn.execute(stmt.returning(ac.id)).scalar()


def fans_to_correct(conn: Connection, group_id: int, after_contact: int, limit: int) -> list[int]:
    """The next `limit` fans (by id) with a text in the group no correction has texted."""
    return list(conn.execute(
        sa.select(at_.contact_id)
        .where(at_.group_id == group_id, at_.correction_id.is_(None),
               at_.contact_id > after_contact)
        .group_by(at_.contact_id).order_by(at_.contact_id).limit(limit)
    ).scalars())  # fmt: skip


def claim_texts(
    conn: Connection, group_id: int, contact_ids: Sequence[int], correction_id: int, at: datetime
) -> dict[int, int]:
    """These fans' texts in the group that no correction claimed: this one's now. {contact:
    their newest such text} (the conditional UPDATE: a text is claimed exactly once)."""
    if not contact_ids:
        return {}
    rows = conn.execute(
        answer_texts.update()
        .where(at_.group_id == group_id, at_.correction_id.is_(None),
               at_.contact_id.in_(list(contact_ids)))
        .values(correction_id=correction_id, done_at=sa.func.coalesce(at_.done_at, at))
        .returning(at_.contact_id, at_.message_id)
    ).all()  # fmt: skip
    newest: dict[int, int] = {}
    for contact_id, message_id in rows:
        newest[contact_id] = max(message_id, newest.get(contact_id, 0))
    return newest


def insert_correction_fans(conn: Connection, rows: Sequence[Row]) -> None:
    if rows:
        conn.execute(answer_correction_fans.insert(), list(rows))


def finish_correction(conn: Connection, correction_id: int) -> int:
    fans_count = int(conn.execute(
        sa.select(sa.func.count()).where(acf.correction_id == correction_id)
    ).scalar_one())  # fmt: skip
    conn.execute(answer_corrections.update().where(ac.id == correction_id).values(fans=fans_count))
    return fans_count


# ---- a fan's data (export, erasure) --------------------------------------------------------


def fan_answer_data(conn: Connection, contact_id: int) -> dict[str, Any]:
    texts = _rows(conn.execute(
        sa.select(at_.message_id, at_.group_id, at_.response, at_.intent, at_.created_at,
                  at_.done_at, at_.correction_id, m.body)
        .join(messages, m.id == at_.message_id)
        .where(at_.contact_id == contact_id).order_by(at_.message_id)
    ))  # fmt: skip
    corrections = _rows(conn.execute(
        sa.select(acf.correction_id, acf.message_id, acf.created_at, ac.group_id,
                  ac.body.label("template"), ac.agent_id)
        .join(answer_corrections, ac.id == acf.correction_id)
        .where(acf.contact_id == contact_id).order_by(acf.correction_id)
    ))  # fmt: skip
    return {"texts": texts, "corrections": corrections}


def erase_fan_answers(conn: Connection, contact_id: int, at: datetime) -> None:
    """The fan's texts leave their groups (their vectors with them); groups are relabelled
    without them. Corrections' rows (ids only) stay: one per fan, still."""
    touched = set(conn.execute(
        sa.select(at_.group_id).where(at_.contact_id == contact_id, at_.group_id.is_not(None))
    ).scalars())  # fmt: skip
    group_rows(conn, touched, lock=True)  # groups before texts: the order a correction locks in
    conn.execute(answer_texts.delete().where(at_.contact_id == contact_id))
    if touched:
        conn.execute(answer_groups.update().where(g.id.in_(sorted(touched))).values(label=""))
        refresh_sizes(conn, touched, at)
