"""bot answers to review: answered broadcast replies grouped, corrections (one row per fan)

Revision ID: 0009_bot_answers
Revises: 0008_topics
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_bot_answers"
down_revision = "0008_topics"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "answer_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("response", sa.String(255), nullable=False),
        sa.Column("intent", sa.String(128), nullable=True),
        sa.Column("centroid", sa.LargeBinary(), nullable=True),
        sa.Column("vector_kind", sa.String(80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("taught_intent", sa.String(128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "answer_texts",
        sa.Column("message_id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("response", sa.String(255), nullable=False),
        sa.Column("intent", sa.String(128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("placed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("correction_id", sa.Integer(), nullable=True),
    )
    for column in ("group_id", "contact_id"):
        op.create_index(op.f(f"ix_answer_texts_{column}"), "answer_texts", [column])
    op.create_table(
        "answer_corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("request_key", sa.String(64), nullable=True, unique=True),
        sa.Column("fans", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(op.f("ix_answer_corrections_group_id"), "answer_corrections", ["group_id"])
    op.create_table(
        "answer_correction_fans",
        sa.Column("correction_id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("answer_correction_fans", "answer_corrections", "answer_texts", "answer_groups"):
        op.drop_table(table)
