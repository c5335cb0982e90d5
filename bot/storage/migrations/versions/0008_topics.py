"""topics of waiting texts, replies to a topic (one row per fan), agents' labels on turns

Revision ID: 0008_topics
Revises: 0007_escalation_states
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_topics"
down_revision = "0007_escalation_states"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("label_pinned", sa.Boolean(), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=True),
        sa.Column("vector_kind", sa.String(80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("auto_reply_id", sa.Integer(), nullable=True),
        sa.Column("auto_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "topic_texts",
        sa.Column("message_id", sa.Integer(), primary_key=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("placed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
    )
    for column in ("topic_id", "contact_id", "escalation_id"):
        op.create_index(op.f(f"ix_topic_texts_{column}"), "topic_texts", [column])
    op.create_table(
        "topic_replies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("request_key", sa.String(64), nullable=True, unique=True),
        sa.Column("fans", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(op.f("ix_topic_replies_topic_id"), "topic_replies", ["topic_id"])
    op.create_table(
        "topic_reply_fans",
        sa.Column("reply_id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "turn_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("intent", sa.String(128), nullable=True),
        sa.Column("predicted", sa.String(128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("message_id", "agent_id", name="uq_turn_labels_message_agent"),
    )
    op.create_index(op.f("ix_turn_labels_message_id"), "turn_labels", ["message_id"])


def downgrade() -> None:
    for table in ("turn_labels", "topic_reply_fans", "topic_replies", "topic_texts", "topics"):
        op.drop_table(table)
