"""send guard: the claim time of each send, in-doubt lookups, a failed broadcast's reason

Revision ID: 0004_send_guard
Revises: 0005_inbound
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_send_guard"
down_revision = "0005_inbound"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        # when the guarded claim (still subscribed, not suppressed) let this send go out
        batch.add_column(sa.Column("claimed_at", TS, nullable=True))
        # provider lookups tried for a send whose outcome is unknown
        batch.add_column(sa.Column("lookups", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))  # why it failed


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("error")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lookups")
        batch.drop_column("claimed_at")
