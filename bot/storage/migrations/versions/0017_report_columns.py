"""the reports' columns: an event's flow and step, a broadcast text's A/B variant (issue 18)

Revision ID: 0017_report_columns
Revises: 0016_report_indexes

`events.flow` / `events.step` (what a flow event's JSON names) serve the flow funnels from an
index instead of parsing each event's JSON; `messages.variant_id` (the fan's recipient row's
variant, written by the enqueuing INSERT) serves an A/B broadcast's per-variant counts from an
index instead of joining each text to its recipient row. Existing rows are filled here; the two
indexes are rebuilt with the columns. On a large PostgreSQL database the backfill and the index
builds take minutes and hold writes to `events` and `messages` meanwhile: run
`fanline db upgrade` as its own step (docs/deploy.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_report_columns"
down_revision = "0016_report_indexes"
branch_labels = None
depends_on = None

FLOW_EVENTS = sa.text("type IN ('flow_started', 'step')")
BROADCAST = sa.text("kind = 'broadcast'")
COMPLIANCE = sa.text("type = 'compliance'")

events = sa.table(
    "events",
    sa.column("type", sa.String),
    sa.column("data", sa.JSON),
    sa.column("flow", sa.Text),
    sa.column("step", sa.Text),
)
messages = sa.table(
    "messages",
    sa.column("kind", sa.String),
    sa.column("broadcast_id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("variant_id", sa.Integer),
)
recipients = sa.table(
    "broadcast_recipients",
    sa.column("broadcast_id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("variant_id", sa.Integer),
)
variants = sa.table("broadcast_variants", sa.column("broadcast_id", sa.Integer))


def _json_text(key: str) -> sa.ColumnElement:
    """A string member of an event's JSON (the events a flow names: their `flow` and `step`)."""
    if op.get_bind().dialect.name == "postgresql":
        return sa.literal_column(f"data ->> '{key}'", sa.Text)
    return sa.func.json_extract(events.c.data, f"$.{key}")


def upgrade() -> None:
    op.add_column("events", sa.Column("flow", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("step", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("variant_id", sa.Integer(), nullable=True))
    flow, step = _json_text("flow"), _json_text("step")
    op.execute(
        events.update()
        .where(events.c.type.in_(("flow_started", "flow_ended", "step", "wait")))
        .values(flow=flow, step=step)
    )
    r = recipients.c
    op.execute(
        messages.update()
        .where(
            messages.c.kind == "broadcast",
            messages.c.broadcast_id.in_(sa.select(variants.c.broadcast_id)),
        )
        .values(
            variant_id=sa.select(r.variant_id)
            .where(r.broadcast_id == messages.c.broadcast_id, r.contact_id == messages.c.contact_id)
            .scalar_subquery()
        )
    )
    op.drop_index("ix_events_flow_at", table_name="events")
    op.create_index(
        "ix_events_flow", "events", ["type", "flow", "step", "at", "contact_id"],
        sqlite_where=FLOW_EVENTS, postgresql_where=FLOW_EVENTS,
    )  # fmt: skip
    op.drop_index("ix_messages_broadcast_status", table_name="messages")
    op.create_index(
        "ix_messages_broadcast_status", "messages",
        ["broadcast_id", "kind", "variant_id", "status", "error_code"],
        sqlite_where=BROADCAST, postgresql_where=BROADCAST,
    )  # fmt: skip
    # a STOP is no reply: the texts that opted a fan out, by message (few rows)
    op.create_index(
        "ix_events_compliance", "events", ["message_id"],
        sqlite_where=COMPLIANCE, postgresql_where=COMPLIANCE,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_events_compliance", table_name="events")
    op.drop_index("ix_messages_broadcast_status", table_name="messages")
    op.create_index(
        "ix_messages_broadcast_status", "messages", ["broadcast_id", "kind", "status", "error_code"],
        sqlite_where=BROADCAST, postgresql_where=BROADCAST,
    )  # fmt: skip
    op.drop_index("ix_events_flow", table_name="events")
    op.create_index(
        "ix_events_flow_at",
        "events",
        ["at"],
        sqlite_where=FLOW_EVENTS,
        postgresql_where=FLOW_EVENTS,
    )
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("variant_id")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("step")
        batch.drop_column("flow")
