"""A/B broadcasts' SQL (bot.audience.variants): each fan's variant, the variants' figures,
the winner. `bot.storage.broadcast_store` calls these inside its own units of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audience.variants import HASH_MODULUS, ABTest, Variant, VariantStats
from bot.storage.broadcast_tables import broadcast_recipients, broadcasts
from bot.storage.engagement_tables import broadcast_variants, link_clicks, links
from bot.storage.tables import contacts, messages

SENT = ("sent", "delivered", "read", "undelivered")  # handed to the carrier


def load_ab(conn: Connection, row: Any) -> ABTest:
    """A stored broadcast row's A/B settings with its variants."""
    v = broadcast_variants.c
    variants = tuple(
        Variant(x.label, x.body, x.id, bool(x.winner))
        for x in conn.execute(
            sa.select(broadcast_variants).where(v.broadcast_id == row.id).order_by(v.label)
        )
    )
    return ABTest(variants, row.test_share, row.winner_by, row.decide_after_s, row.send_winner)


def mark_winner(conn: Connection, broadcast_id: int, winner: Variant) -> None:
    v = broadcast_variants.c
    conn.execute(
        broadcast_variants.update()
        .where(v.broadcast_id == broadcast_id)
        .values(winner=v.id == winner.id)
    )


def due_decisions(conn: Connection, at: datetime) -> list[int]:
    """A/B broadcasts whose test has run its time, the winner not yet sent (and, when it is
    sent by hand, not yet chosen)."""
    b, v = broadcasts.c, broadcast_variants.c
    chosen = sa.exists().where(v.broadcast_id == b.id, v.winner.is_(True))
    return list(
        conn.execute(
            sa.select(b.id)
            .where(b.test_share.is_not(None), b.decide_at <= at, b.status == "sending",
                   b.winner_sent_at.is_(None),
                   sa.or_(b.send_winner == "auto", sa.not_(chosen)))
            .order_by(b.id)
        ).scalars()
    )  # fmt: skip


def variant_stats(conn: Connection, broadcast_id: int, replies_query: Any) -> list[VariantStats]:
    """Per variant: texts sent, fans who tapped a link (people only), fans who replied."""
    m, r, v = messages.c, broadcast_recipients.c, broadcast_variants.c
    sent = dict(
        conn.execute(
            sa.select(r.variant_id, sa.func.count())
            .select_from(messages.join(broadcast_recipients, sa.and_(
                r.broadcast_id == m.broadcast_id, r.contact_id == m.contact_id)))
            .where(m.broadcast_id == broadcast_id, m.kind == "broadcast", m.status.in_(SENT))
            .group_by(r.variant_id)
        ).all()
    )  # fmt: skip
    clicks = dict(
        conn.execute(
            sa.select(links.c.variant_id, sa.func.count(sa.distinct(links.c.message_id)))
            .select_from(links.join(link_clicks, link_clicks.c.link_id == links.c.id))
            .where(links.c.broadcast_id == broadcast_id, link_clicks.c.agent_kind == "human")
            .group_by(links.c.variant_id)
        ).all()
    )
    replies = dict(
        conn.execute(replies_query(broadcast_id, r.variant_id).group_by(r.variant_id)).all()
    )
    rows = conn.execute(
        sa.select(v.id, v.label, v.winner).where(v.broadcast_id == broadcast_id).order_by(v.label)
    ).all()
    return [
        VariantStats(x.label, int(sent.get(x.id, 0)), int(clicks.get(x.id, 0)),
                     int(replies.get(x.id, 0)), bool(x.winner))
        for x in rows
    ]  # fmt: skip


def clicks(conn: Connection, broadcast_id: int) -> int:
    """Texts of the broadcast whose link a person tapped (previews and bots apart)."""
    return int(
        conn.execute(
            sa.select(sa.func.count(sa.distinct(links.c.message_id)))
            .select_from(links.join(link_clicks, link_clicks.c.link_id == links.c.id))
            .where(links.c.broadcast_id == broadcast_id, link_clicks.c.agent_kind == "human")
        ).scalar_one()
    )


def ab_columns(ab: ABTest | None) -> dict[str, Any]:
    if ab is None:
        return {}
    return {"test_share": ab.test_share, "winner_by": ab.winner_by,
            "decide_after_s": ab.decide_after_s, "send_winner": ab.send_winner}  # fmt: skip


def variant_expr(broadcast_id: int, ab: ABTest) -> Any:
    """Each fan's variant, or NULL (held): a hash of fan and broadcast puts the fan in a bucket
    of HASH_MODULUS; the test share's buckets are split evenly over the variants. Random across
    fans, the same every time for one fan (a resumed enqueue agrees with the first)."""
    mixed = contacts.c.id * sa.literal(2_654_435_761, sa.BigInteger) + sa.literal(
        (broadcast_id * 40_503) % HASH_MODULUS, sa.BigInteger
    )
    bucket = mixed % HASH_MODULUS
    ids = [v.id for v in ab.variants]
    which = sa.case(
        *((bucket % len(ids) == i, sa.literal(vid, sa.Integer)) for i, vid in enumerate(ids)),
        else_=sa.literal(ids[0], sa.Integer),
    )
    threshold = int(ab.test_share * HASH_MODULUS)
    return sa.case((bucket < threshold, which), else_=sa.cast(sa.null(), sa.Integer))
