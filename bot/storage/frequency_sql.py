"""The frequency cap's statements (bot.audience.frequency), run inside the outbox's guarded claim.

Serialised per fan: the claim first locks the batch's fans (PostgreSQL: their contact rows,
FOR NO KEY UPDATE, in id order; SQLite: a no-op write takes the database's write lock before
anything is read), then counts what they were sent. A broadcast and a timed flow claiming texts
to the same fan at once therefore count one after the other: the second sees the first's
claim, committed, and at most N go.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audience.frequency import COUNTED, MARKETING_KINDS, FrequencyCap, over_cap
from bot.storage.tables import contacts, messages


def capped(
    conn: Connection, cap: FrequencyCap | None, ids: Sequence[int], sendable: Any, at: datetime
) -> set[int]:
    """Of these queued outbox ids, the marketing texts beyond their fans' allowance."""
    if cap is None or not ids:
        return set()
    m = messages.c
    candidates = conn.execute(
        sa.select(m.id, m.contact_id)
        .where(m.id.in_(list(ids)), m.kind.in_(MARKETING_KINDS), m.contact_id.is_not(None))
    ).all()  # fmt: skip
    if not candidates:
        return set()
    fans = sorted({fan for _, fan in candidates})
    _lock_fans(conn, fans)
    # after the lock: what a STOP or another claim committed meanwhile is seen from here on
    still = conn.execute(
        sa.select(m.id, m.contact_id).where(
            m.id.in_([i for i, _ in candidates]), m.status == "queued", sendable
        )
    ).all()
    recent = conn.execute(
        sa.select(m.contact_id, sa.func.count())
        .where(m.contact_id.in_(fans), m.kind.in_(MARKETING_KINDS), m.status.in_(COUNTED),
               m.claimed_at >= at - cap.per)
        .group_by(m.contact_id)
    ).all()  # fmt: skip
    return over_cap(cap, [(i, fan) for i, fan in still], {fan: n for fan, n in recent})


def _lock_fans(conn: Connection, fans: list[int]) -> None:
    c = contacts.c
    if conn.dialect.name == "postgresql":
        # NO KEY UPDATE: new messages for the fan (a foreign key check) are not held up
        conn.execute(
            sa.select(c.id).where(c.id.in_(fans)).order_by(c.id).with_for_update(key_share=True)
        ).all()
    else:  # the write lock, before the counts are read (pysqlite reads outside a transaction)
        conn.execute(contacts.update().where(c.id == fans[0]).values(subscription=c.subscription))
