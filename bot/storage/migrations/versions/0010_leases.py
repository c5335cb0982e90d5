"""leases: which process runs each singleton job (broadcast scheduler, sweeps), until when

Revision ID: 0010_leases
Revises: 0009_bot_answers
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_leases"
down_revision = "0009_bot_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # times are the database's clock in epoch seconds: one clock for every machine
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
