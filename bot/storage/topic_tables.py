"""The topics' tables: waiting texts grouped by meaning, one answer to many, labels that teach.

Migration 0008 creates these. A topic holds fan texts (`topic_texts`, with the sentence vector
the grouping used, so re-grouping never re-encodes); a reply to a topic is one `topic_replies`
row and one outbox row per fan, `topic_reply_fans` keeping it to one per (reply, fan) under any
retry or race. `turn_labels` are agents' verdicts on bot turns: suggested training examples,
and real-traffic data for the out-of-scope threshold.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.tables import TS, metadata

topics = sa.Table(
    "topics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, default="open"),  # open | answered | merged
    sa.Column("label", sa.String(120), nullable=False, default=""),
    sa.Column("label_pinned", sa.Boolean, nullable=False, default=False),  # an agent named it
    sa.Column("centroid", sa.LargeBinary, nullable=True),  # float32, unit length
    sa.Column("vector_kind", sa.String(80), nullable=False, default=""),  # encoder identity
    sa.Column("size", sa.Integer, nullable=False, default=0),  # texts now in it
    sa.Column("broadcast_id", sa.Integer, nullable=True),  # the broadcast its texts answer
    sa.Column("merged_into", sa.Integer, nullable=True),
    # "answer new texts in this topic with the same reply" until a time (None: off)
    sa.Column("auto_reply_id", sa.Integer, nullable=True),
    sa.Column("auto_until", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

topic_texts = sa.Table(
    "topic_texts",
    metadata,
    sa.Column("message_id", sa.Integer, primary_key=True),  # the fan's inbound text
    sa.Column("topic_id", sa.Integer, nullable=True, index=True),  # None: not grouped yet
    sa.Column("contact_id", sa.Integer, nullable=False, index=True),
    sa.Column("escalation_id", sa.Integer, nullable=True, index=True),
    sa.Column("vector", sa.LargeBinary, nullable=True),  # float32
    sa.Column("similarity", sa.Float, nullable=True),  # to the topic's centroid when it joined
    sa.Column("placed_by", sa.Integer, nullable=True),  # the agent who moved it (None: grouping)
    sa.Column("created_at", TS, nullable=False),  # the text's arrival
    sa.Column("done_at", TS, nullable=True),  # answered (by a reply, a thread's resolution)
)

topic_replies = sa.Table(
    "topic_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("topic_id", sa.Integer, nullable=False, index=True),
    sa.Column("agent_id", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the template: {first_name} etc.
    sa.Column("request_key", sa.String(64), nullable=True, unique=True),  # the client's retry key
    sa.Column("fans", sa.Integer, nullable=False, default=0),  # outbox rows written
    sa.Column("created_at", TS, nullable=False),
)

topic_reply_fans = sa.Table(
    "topic_reply_fans",
    metadata,
    sa.Column("reply_id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, nullable=False),  # the outbox row
    sa.Column("auto", sa.Boolean, nullable=False, default=False),  # sent by the auto-reply
    sa.Column("created_at", TS, nullable=False),
)

turn_labels = sa.Table(
    "turn_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, nullable=False, index=True),  # the inbound text judged
    sa.Column("contact_id", sa.Integer, nullable=True),
    sa.Column("agent_id", sa.Integer, nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),  # intent | handover
    sa.Column("intent", sa.String(128), nullable=True),  # with verdict=intent
    sa.Column("predicted", sa.String(128), nullable=True),  # what the bot did: intent or oos
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("text", sa.Text, nullable=False),  # scrubbed of numbers, emails, names
    sa.Column("status", sa.String(16), nullable=False, default="new"),  # new|accepted|rejected
    sa.Column("decided_by", sa.Integer, nullable=True),
    sa.Column("decided_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("message_id", "agent_id", name="uq_turn_labels_message_agent"),
)
