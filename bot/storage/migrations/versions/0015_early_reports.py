"""early reports: status callbacks that beat the send's own commit, kept until the SID is stored

Revision ID: 0015_early_reports
Revises: 0014_links_variants
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_early_reports"
down_revision = "0014_links_variants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_reports",
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("early_reports")
