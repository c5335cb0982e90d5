"""escalation states: waiting vs open, due and missed escalations, texts joined to an escalation

Revision ID: 0007_escalation_states
Revises: 0004_send_guard
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_escalation_states"
down_revision = "0004_send_guard"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("missed_at", TS, nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("escalation_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_messages_escalation_id"), "messages", ["escalation_id"])
    # `open` meant "with a person", claimed or not: unclaimed threads are `waiting` now
    op.execute("UPDATE conversations SET status = 'waiting' "
               "WHERE status = 'open' AND assignee_id IS NULL")  # fmt: skip


def downgrade() -> None:
    op.execute("UPDATE conversations SET status = 'open' WHERE status IN ('waiting', 'missed')")
    op.drop_index(op.f("ix_messages_escalation_id"), table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("escalation_id")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("missed_at")
        batch.drop_column("due_at")
