"""send rates: one GCRA row per sending number, shared by every process (bot.storage.send_rates)

Revision ID: 0011_send_rates
Revises: 0010_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_send_rates"
down_revision = "0010_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_rates",
        sa.Column("key", sa.String(64), primary_key=True),  # number, MG... SID, "" = default
        sa.Column("tat", sa.Float(53), nullable=False),  # theoretical arrival time, epoch s
        sa.Column("slow_factor", sa.Float(53), nullable=False),  # < 1 after 20429 / 30022
        sa.Column("slow_until", sa.Float(53), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),  # UTC day of day_count
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.Column("last_ok", sa.Integer(), nullable=False),  # the last take was granted
    )


def downgrade() -> None:
    op.drop_table("send_rates")
