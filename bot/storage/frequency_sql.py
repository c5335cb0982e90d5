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
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from bot.audience.frequency import COUNTED, MARKETING_KINDS, FrequencyCap, over_cap
from bot.outbound import OutboxItem
from bot.storage.tables import contacts, messages

# as literals, the partial index's own condition (ix_messages_marketing): SQLite uses a partial
# index only for a query whose WHERE repeats its condition with the same constants
_MARKETING = messages.c.kind.in_(
    sa.bindparam("marketing", list(MARKETING_KINDS), expanding=True, literal_execute=True)
)


def capped(
    conn: Connection, cap: FrequencyCap | None, items: Sequence[OutboxItem], at: datetime
) -> set[int]:
    """Of these reserved texts, the marketing ones beyond their fans' allowance. The caller
    skips only those still sendable: a text to a fan who opted out is cancelled as before."""
    candidates = [
        (i.id, i.contact_id)
        for i in items
        if i.kind in MARKETING_KINDS and i.contact_id is not None
    ]
    if cap is None or not candidates:
        return set()
    m = messages.c
    fans = sorted({fan for _, fan in candidates})
    _lock_fans(conn, fans)
    # the status is counted, not filtered on: a filter on it draws SQLite to the outbox's
    # (status, not_before) index, a scan of every delivered text, instead of the fans'
    counted = sa.func.count(sa.case((m.status.in_(COUNTED), 1)))
    recent = conn.execute(
        sa.select(m.contact_id, counted)
        .where(_among(conn, m.contact_id, fans), _MARKETING, m.claimed_at >= at - cap.per)
        .group_by(m.contact_id)
    ).all()
    return over_cap(cap, candidates, {fan: n for fan, n in recent})


def _lock_fans(conn: Connection, fans: list[int]) -> None:
    c = contacts.c
    if conn.dialect.name == "postgresql":
        # NO KEY UPDATE: new messages for the fan (a foreign key check) are not held up
        conn.execute(
            sa.select(c.id)
            .where(_among(conn, c.id, fans))
            .order_by(c.id)
            .with_for_update(key_share=True)
        ).all()
    else:  # the write lock, before the counts are read (pysqlite reads outside a transaction)
        conn.execute(contacts.update().where(c.id == fans[0]).values(subscription=c.subscription))


def _among(conn: Connection, column: Any, ids: list[int]) -> Any:
    """`column = ANY(:ids)` on PostgreSQL: one array parameter, a third of the cost of an IN
    list of a hundred (binding and planning); an IN list on SQLite."""
    if conn.dialect.name != "postgresql":
        return column.in_(ids)
    return column == sa.func.any(sa.literal(ids, postgresql.ARRAY(sa.Integer)))
