"""The bot answers' tables: replies to a broadcast the bot answered, grouped for an agent's review.

Migration 0009 creates these. An answer group holds fan texts the bot answered with the same
response(s) and that mean the same (`answer_texts`, with the vector the grouping used); an
agent marks a group right, corrects it (one `answer_corrections` row and one outbox row per fan,
`answer_correction_fans` keeping it to one per (correction, fan)), or teaches from it.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.tables import TS, metadata

answer_groups = sa.Table(
    "answer_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # open | right (reviewed: nothing to send) | corrected | taught
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("label", sa.String(120), nullable=False, default=""),
    sa.Column("response", sa.String(255), nullable=False),  # what the bot said: "utter_a + utter_b"
    sa.Column("intent", sa.String(128), nullable=True),  # the intent most of its texts got
    sa.Column("centroid", sa.LargeBinary, nullable=True),  # float32, unit length
    sa.Column("vector_kind", sa.String(80), nullable=False, default=""),
    sa.Column("size", sa.Integer, nullable=False, default=0),
    sa.Column("broadcast_id", sa.Integer, nullable=True),
    sa.Column("reviewed_by", sa.Integer, nullable=True),  # the agent who marked, corrected, taught
    sa.Column("reviewed_at", TS, nullable=True),
    sa.Column("taught_intent", sa.String(128), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

answer_texts = sa.Table(
    "answer_texts",
    metadata,
    sa.Column("message_id", sa.Integer, primary_key=True),  # the fan's inbound text
    # None: not for review (the turn also changed consent, or handed over): never read again
    sa.Column("group_id", sa.Integer, nullable=True, index=True),
    sa.Column("contact_id", sa.Integer, nullable=False, index=True),
    sa.Column("broadcast_id", sa.Integer, nullable=True),
    sa.Column("response", sa.String(255), nullable=False, default=""),
    sa.Column("intent", sa.String(128), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("vector", sa.LargeBinary, nullable=True),
    sa.Column("similarity", sa.Float, nullable=True),
    sa.Column("placed_by", sa.Integer, nullable=True),  # the agent who moved it
    sa.Column("created_at", TS, nullable=False),  # the text's arrival
    sa.Column("done_at", TS, nullable=True),  # reviewed: marked right, corrected, taught
    sa.Column("correction_id", sa.Integer, nullable=True),  # the correction that texted the fan
)

answer_corrections = sa.Table(
    "answer_corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("group_id", sa.Integer, nullable=False, index=True),
    sa.Column("agent_id", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the template: {first_name} etc.
    sa.Column("request_key", sa.String(64), nullable=True, unique=True),
    sa.Column("fans", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", TS, nullable=False),
)

answer_correction_fans = sa.Table(
    "answer_correction_fans",
    metadata,
    sa.Column("correction_id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, nullable=False),  # the outbox row
    sa.Column("created_at", TS, nullable=False),
)
