"""timed flows: flow_jobs and the scheduler's cursors (bot.storage.engagement_tables)

Revision ID: 0012_timed_flows
Revises: 0011_send_rates
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_timed_flows"
down_revision = "0011_send_rates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("occurrence", sa.String(64), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "contact_id", "flow", "trigger", "occurrence", name="uq_flow_jobs_once"
        ),
    )
    op.create_index("ix_flow_jobs_contact_id", "flow_jobs", ["contact_id"])
    op.create_index("ix_flow_jobs_due", "flow_jobs", ["status", "due_at"])
    op.create_table(
        "scheduler_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_cursors")
    op.drop_table("flow_jobs")
