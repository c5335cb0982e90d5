"""the reports' indexes (bot.storage.tables, bot.storage.report_store)

Revision ID: 0016_report_indexes
Revises: 0015_early_reports

On a large PostgreSQL database these take a while (ten million texts: about a minute) and
hold writes to their tables meanwhile: run `fanline db upgrade` as its own step (docs/deploy.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_report_indexes"
down_revision = "0015_early_reports"
branch_labels = None
depends_on = None

INBOUND = sa.text("direction = 'in'")
FLOW_EVENTS = sa.text("type IN ('flow_started', 'step')")
BROADCAST = sa.text("kind = 'broadcast'")
INDEXES = (
    (
        "ix_messages_inbound_day",
        "messages",
        ["direction", "created_at", "status", "escalation_id"],
        INBOUND,
    ),
    (
        "ix_messages_broadcast_replies",
        "messages",
        ["broadcast_id", "direction", "contact_id"],
        INBOUND,
    ),
    (
        "ix_messages_broadcast_status",
        "messages",
        ["broadcast_id", "kind", "status", "error_code"],
        BROADCAST,
    ),
    ("ix_consent_events_at", "consent_events", ["at", "action"], None),
    ("ix_escalations_created", "escalations", ["created_at", "first_response_at"], None),
    ("ix_events_flow_at", "events", ["at"], FLOW_EVENTS),
    ("ix_contacts_subscription", "contacts", ["subscription"], None),
)


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, table, _columns, _where in INDEXES:
        op.drop_index(name, table_name=table)
