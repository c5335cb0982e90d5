"""tracked links, their clicks, and A/B broadcast variants (bot.storage.engagement_tables)

Revision ID: 0014_links_variants
Revises: 0013_tags_cap
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_links_variants"
down_revision = "0013_tags_cap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast_variants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("broadcast_id", sa.Integer(), sa.ForeignKey("broadcasts.id"), nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("winner", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("broadcast_id", "label", name="uq_broadcast_variants"),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("variant_id", sa.Integer(), nullable=True),
        sa.Column("flow", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("message_id", "contact_id", "broadcast_id"):
        op.create_index(f"ix_links_{column}", "links", [column])
    op.create_table(
        "link_clicks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("link_id", sa.Integer(), sa.ForeignKey("links.id"), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("agent_kind", sa.String(8), nullable=False),
        sa.UniqueConstraint("link_id", "agent_kind", name="uq_link_clicks"),
    )
    op.create_index("ix_link_clicks_contact_id", "link_clicks", ["contact_id"])
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("test_share", sa.Float(), nullable=True))
        batch.add_column(sa.Column("winner_by", sa.String(8), nullable=True))
        batch.add_column(sa.Column("decide_after_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("send_winner", sa.String(8), nullable=True))
        batch.add_column(sa.Column("decide_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("winner_sent_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("broadcast_recipients") as batch:
        batch.add_column(sa.Column("variant_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcast_recipients") as batch:
        batch.drop_column("variant_id")
    with op.batch_alter_table("broadcasts") as batch:
        for column in ("winner_sent_at", "decide_at", "send_winner", "decide_after_s",
                       "winner_by", "test_share"):  # fmt: skip
            batch.drop_column(column)
    op.drop_table("link_clicks")
    op.drop_table("links")
    op.drop_table("broadcast_variants")
