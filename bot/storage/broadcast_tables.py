"""Broadcast tables, on the same `metadata` as `bot.storage.tables` (migration 0003 creates them).

`broadcast_recipients` has one row per (broadcast, fan): the exactly-once guarantee lives in its
UNIQUE constraint, and in the partial unique index on broadcast messages beside it.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.tables import TS, messages, metadata

broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # template: {first_name}, {field|fallback}
    sa.Column("media_urls", sa.JSON, nullable=False, default=list),
    sa.Column("segment", sa.JSON, nullable=False, default=dict),  # Segment.to_json()
    # bot.audience.broadcast_model.STATUSES: draft | scheduled | enqueuing | sending | paused | cancelled
    # | failed | completed
    sa.Column("status", sa.String(16), nullable=False, default="draft"),
    sa.Column("sender", sa.String(64), nullable=True),  # None: the default number / service
    sa.Column("rate", sa.Float, nullable=False),  # messages per second this broadcast is paced at
    sa.Column("quiet_start", sa.String(5), nullable=False, default="08:00"),
    sa.Column("quiet_end", sa.String(5), nullable=False, default="21:00"),
    sa.Column("default_zone", sa.String(64), nullable=False, default="America/New_York"),
    sa.Column("send_at", TS, nullable=True),  # scheduled start; None: when `send` is run
    # resumable enqueuing: the last contact id already enqueued and how many so far
    sa.Column("cursor", sa.Integer, nullable=False, default=0),
    sa.Column("enqueued", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("started_at", TS, nullable=True),
    sa.Column("enqueued_at", TS, nullable=True),  # every recipient is in the outbox
    sa.Column("finished_at", TS, nullable=True),  # cancelled, or nothing left to send
    sa.Column("error", sa.Text, nullable=True),  # why a failed broadcast failed (no fan data)
    # 0014, A/B (bot.audience.variants; NULL test_share: one body for everyone): the share of the
    # segment texted first, split evenly over broadcast_variants; the rest are held until the
    # winner (by `ctr` or `replies`) is chosen at decide_at (the test enqueued + decide_after_s)
    # and sent to them, by the scheduler (`auto`) or `fanline broadcast send-winner` (`manual`)
    sa.Column("test_share", sa.Float, nullable=True),
    sa.Column("winner_by", sa.String(8), nullable=True),  # ctr | replies
    sa.Column("decide_after_s", sa.Integer, nullable=True),
    sa.Column("send_winner", sa.String(8), nullable=True),  # auto | manual
    sa.Column("decide_at", TS, nullable=True),
    sa.Column("winner_sent_at", TS, nullable=True),  # the rest's enqueue began (once)
)

broadcast_recipients = sa.Table(
    "broadcast_recipients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("broadcast_id", sa.Integer, sa.ForeignKey("broadcasts.id"), nullable=False),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # 0014: the A/B variant the fan was texted (broadcast_variants.id); NULL on an A/B broadcast
    # is a held fan, not yet texted (the winner's id is set when the rest are sent); NULL on
    # any other broadcast: its one body
    sa.Column("variant_id", sa.Integer, nullable=True),
    sa.UniqueConstraint("broadcast_id", "contact_id", name="uq_broadcast_recipients_fan"),
)

# At most one outbound broadcast text per (broadcast, fan), whatever happens to the enqueuer;
# it also serves the per-broadcast statistics and the recipient -> message lookups.
ix_broadcast_messages = sa.Index(
    "ux_messages_broadcast_fan",
    messages.c.broadcast_id,
    messages.c.contact_id,
    unique=True,
    sqlite_where=messages.c.kind == "broadcast",
    postgresql_where=messages.c.kind == "broadcast",
)
