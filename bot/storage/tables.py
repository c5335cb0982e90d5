"""The schema, as SQLAlchemy Core tables; Alembic migrations under `migrations/` create it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = sa.DateTime(timezone=True)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone", sa.String(32), nullable=True, unique=True),  # E.164; NULL once erased
    sa.Column("phone_hash", sa.String(64), nullable=False, unique=True),  # survives erasure
    sa.Column("profile", sa.JSON, nullable=False, default=dict),
    # pending (never opted in) | subscribed | unsubscribed
    sa.Column("subscription", sa.String(16), nullable=False, default="pending"),
    sa.Column("subscribed_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_inbound_at", TS, nullable=True),
    sa.Column("erased_at", TS, nullable=True),
    sa.Column("signup_used_at", TS, nullable=True),  # signup links issued before: spent
)

consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),  # opt_in | opt_out | resubscribe
    sa.Column(
        "method", sa.String(32), nullable=False
    ),  # sms_keyword | sms_yes | web_form | carrier | agent
    sa.Column("text_shown", sa.Text, nullable=True),
    sa.Column("source_number", sa.String(32), nullable=True),  # our number the fan texted
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("at", TS, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, unique=True),
    # bot | waiting | open | snoozed | missed | resolved (bot.domain.CONVERSATION_STATES)
    sa.Column("status", sa.String(16), nullable=False, default="bot"),
    sa.Column("dialogue", sa.JSON, nullable=False, default=dict),  # flow stack + slots
    sa.Column("assignee_id", sa.Integer, nullable=True),
    sa.Column("snoozed_until", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=True, index=True),
    sa.Column("direction", sa.String(3), nullable=False),  # in | out
    # provider id: MessageSid of an inbound text (idempotency key), SM... once an outbound is sent
    sa.Column("channel_id", sa.String(64), nullable=True, unique=True),
    sa.Column("from_number", sa.String(64), nullable=True),
    sa.Column("to_number", sa.String(64), nullable=True),
    sa.Column("body", sa.Text, nullable=False, default=""),
    sa.Column("media_urls", sa.JSON, nullable=False, default=list),
    # reply | agent | broadcast | timed | compliance | system; for inbound: sms
    sa.Column("kind", sa.String(16), nullable=False),
    # inbound: received | processed | held (human owns the thread) | ignored (the fan opted out:
    #   stored, never answered)
    # outbound: queued | sending | sent | delivered | undelivered | failed | cancelled | twiml
    #   | in_doubt (answer lost: being looked up) | unknown (lookups gave up: an operator decides)
    #   | skipped (over the fan's frequency cap, `error` says so: never sent later)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reply_to", sa.Integer, nullable=True, index=True),  # inbound message answered
    sa.Column("broadcast_id", sa.Integer, nullable=True, index=True),
    sa.Column("agent_id", sa.Integer, nullable=True),
    sa.Column("private", sa.Boolean, nullable=False, default=False),  # agent note
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", TS, nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("segments", sa.Integer, nullable=True),
    sa.Column("encoding", sa.String(8), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS, nullable=True),
    sa.Column("claimed_at", TS, nullable=True),  # the guarded claim that let the send go out
    sa.Column("lookups", sa.Integer, nullable=False, default=0, server_default="0"),
    # inbound: the escalation this text opened or joined (or was held for)
    sa.Column("escalation_id", sa.Integer, nullable=True, index=True),
    # 0017: an A/B broadcast's text: the variant it carries (broadcast_variants.id), written by
    # the enqueuing INSERT from the fan's recipient row, so reports count per variant from an index
    sa.Column("variant_id", sa.Integer, nullable=True),
    sa.Index("ix_messages_outbox", "status", "not_before"),
    sa.Index("ix_messages_contact_created", "contact_id", "id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=True, index=True),
    sa.Column("message_id", sa.Integer, nullable=True, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    sa.Column("at", TS, nullable=False),
    # 0017: the flow and step an event names (`flow_started`, `step`, `wait`, `flow_ended`), as
    # columns filled by the same INSERT (`flow_columns`), so the funnels never parse `data`
    sa.Column("flow", sa.Text, nullable=True),
    sa.Column("step", sa.Text, nullable=True),
)


def flow_columns(data: Any) -> dict[str, str | None]:
    """The `flow` and `step` columns of an event whose data names them (None otherwise)."""
    flow = data.get("flow") if isinstance(data, dict) else None
    step = data.get("step") if isinstance(data, dict) else None
    return {
        "flow": flow if isinstance(flow, str) else None,
        "step": step if isinstance(step, str) else None,
    }


escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("message_id", sa.Integer, nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False, default="normal"),
    sa.Column("guesses", sa.JSON, nullable=False, default=list),  # [[intent, confidence], ...]
    sa.Column("assignee_id", sa.Integer, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("first_response_at", TS, nullable=True),
    sa.Column("resolved_at", TS, nullable=True),
    sa.Column("due_at", TS, nullable=True),  # unanswered by then: missed (team hours counted)
    sa.Column("missed_at", TS, nullable=True),  # the fan was told and handed back to the bot
    sa.Index("ix_escalations_open", "resolved_at", "priority", "created_at"),
)

# A status callback for a SID not stored yet (it can beat the send's own commit): kept here and
# applied when the SID is stored, so no delivery outcome is lost. No personal data: SID, status.
early_reports = sa.Table(
    "early_reports",
    metadata,
    sa.Column("channel_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("at", TS, nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    # hashed numbers that must never be texted again, kept after erasure
    sa.Column("phone_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("at", TS, nullable=False),
)

# --- 0016: the reports' indexes (bot/storage/report_store.py; bench/reports.py times each query
# on a million fans and ten million texts). Partial where a report reads one kind of row, so the
# turn's other writes do not maintain them; the queries write the same constant inline. Every
# column a query names is in its index (SQLite reads the rows otherwise), the constant too.
_INBOUND = sa.text("direction = 'in'")
_FLOW_EVENTS = sa.text("type IN ('flow_started', 'step')")
REPORT_INDEXES = (
    # texts in per day and how many the bot answered: read from the index alone
    sa.Index(
        "ix_messages_inbound_day",
        messages.c.direction,
        messages.c.created_at,
        messages.c.status,
        messages.c.escalation_id,
        sqlite_where=_INBOUND,
        postgresql_where=_INBOUND,
    ),
    # a broadcast's replies: fans whose text the pipeline linked to it
    sa.Index(
        "ix_messages_broadcast_replies",
        messages.c.broadcast_id,
        messages.c.direction,
        messages.c.contact_id,
        sqlite_where=_INBOUND,
        postgresql_where=_INBOUND,
    ),
    # a broadcast's texts by variant, status and error code, without reading a row (`kind` too:
    # SQLite counts an index as covering only when it holds every column the query names), in
    # the GROUP BY's order (0017: `variant_id` added)
    sa.Index(
        "ix_messages_broadcast_status",
        messages.c.broadcast_id,
        messages.c.kind,
        messages.c.variant_id,
        messages.c.status,
        messages.c.error_code,
        sqlite_where=sa.text("kind = 'broadcast'"),
        postgresql_where=sa.text("kind = 'broadcast'"),
    ),
    sa.Index("ix_consent_events_at", consent_events.c.at, consent_events.c.action),
    sa.Index("ix_escalations_created", escalations.c.created_at, escalations.c.first_response_at),
    # flow funnels: fans per flow and step in a period, each group's range of the period read
    # from the index alone (0017: the columns, replacing ix_events_flow_at on `at` alone)
    sa.Index(
        "ix_events_flow",
        events.c.type,
        events.c.flow,
        events.c.step,
        events.c.at,
        events.c.contact_id,
        sqlite_where=_FLOW_EVENTS,
        postgresql_where=_FLOW_EVENTS,
    ),
    sa.Index("ix_contacts_subscription", contacts.c.subscription),
    # 0017: a STOP is no reply to a broadcast: the texts that opted a fan out, by message
    sa.Index(
        "ix_events_compliance",
        events.c.message_id,
        sqlite_where=sa.text("type = 'compliance'"),
        postgresql_where=sa.text("type = 'compliance'"),
    ),
)  # an Index built on a table's columns is part of that table (and of `metadata`)
