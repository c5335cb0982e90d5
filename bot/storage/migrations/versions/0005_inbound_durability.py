"""inbound durability: contacts.signup_used_at (signup links are single-use)

Revision ID: 0005_inbound
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_inbound"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a signup link issued before this instant can no longer subscribe (used or superseded)
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("signup_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("signup_used_at")
