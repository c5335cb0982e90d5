"""fan tags and the frequency cap (bot.storage.engagement_tables)

Revision ID: 0013_tags_cap
Revises: 0012_timed_flows
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_tags_cap"
down_revision = "0012_timed_flows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fan_tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("contact_id", "tag", name="uq_fan_tags"),
    )
    op.create_index("ix_fan_tags_tag", "fan_tags", ["tag", "contact_id"])
    # the frequency cap's count: a fan's marketing texts by claim time (partial: only those)
    marketing = sa.text("kind IN ('broadcast', 'timed')")
    op.create_index(
        "ix_messages_marketing", "messages", ["contact_id", "claimed_at"],
        sqlite_where=marketing, postgresql_where=marketing,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_marketing", table_name="messages")
    op.drop_table("fan_tags")
