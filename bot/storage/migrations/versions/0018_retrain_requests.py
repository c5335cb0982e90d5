"""retrain_requests: a teach's request to retrain, durable until a worker has trained it

Revision ID: 0018_retrain_requests
Revises: 0017_report_columns
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_retrain_requests"
down_revision = "0017_report_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # one row per teach: small, read without an index. Times are the database's clock in epoch seconds, as in `leases`: one clock for every machine
    op.create_table(
        "retrain_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("holder", sa.String(160), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("retrain_requests")
