"""The engagement loop's tables (issue 18), on the same `metadata` as `bot.storage.tables`.

Migrations 0012 (timed flows), 0013 (tags, the frequency cap) and 0014 (tracked links, A/B
variants) create them. Exactly-once lives in UNIQUE constraints, as for broadcasts: a timed
flow runs at most once per (fan, flow, trigger, occurrence); a link has one code per
(recipient message, URL); a click is recorded once per (link, fan).
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.tables import TS, messages, metadata

# --- 0012: timed flows --------------------------------------------------------------------------
# One row per time a timed flow is due for a fan. `occurrence` tells repeats apart: the year of a
# birthday, the link code of a click, the tag of a tagging, the step of a `wait`, "" for once only.
flow_jobs = sa.Table(
    "flow_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("flow", sa.String(64), nullable=False),  # flow id in flows/*.yml
    # after_signup | on_birthday | at | no_reply_after | on_click | tagged | wait
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("occurrence", sa.String(64), nullable=False, default=""),
    sa.Column("step", sa.String(64), nullable=True),  # where a `wait` resumes the flow
    sa.Column("due_at", TS, nullable=False),
    # due | running | done | skipped | cancelled
    sa.Column("status", sa.String(12), nullable=False, default="due"),
    # skipped/cancelled: unsubscribed | erased | frequency_cap | flow_removed | replied | expired
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # `running`: its runner's lease (a dead process's job is taken again after it); `due`: held
    # until then (a person owns the fan's thread: reason `person_in_thread`), else NULL
    sa.Column("lease_until", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("done_at", TS, nullable=True),
    sa.UniqueConstraint("contact_id", "flow", "trigger", "occurrence", name="uq_flow_jobs_once"),
    sa.Index("ix_flow_jobs_due", "status", "due_at"),
)

# How far each trigger's scan has read (the id of the last consent event, click or tag seen), so
# that finding one day's due texts reads only what is new: the scheduler's cursor, per trigger.
scheduler_cursors = sa.Table(
    "scheduler_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated_at", TS, nullable=False),
)

# --- 0013: tags and the frequency cap -----------------------------------------------------------
fan_tags = sa.Table(
    "fan_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # the `tagged` trigger's cursor reads it
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),  # lower case, [a-z0-9_-]
    # keyword | agent | flow | profile (a profile update, or found on the profile alone) | import | api
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("contact_id", "tag", name="uq_fan_tags"),
    sa.Index("ix_fan_tags_tag", "tag", "contact_id"),
)

# The frequency cap (bot.audience.frequency) counts a fan's marketing texts claimed within the
# window at every claim: this partial index holds only marketing texts, by fan and claim time,
# so the count reads the few in the window instead of every message the fan ever exchanged.
_marketing = messages.c.kind.in_(("broadcast", "timed"))
ix_messages_marketing = sa.Index(
    "ix_messages_marketing", messages.c.contact_id, messages.c.claimed_at,
    sqlite_where=_marketing, postgresql_where=_marketing,
)  # fmt: skip

# --- 0014: tracked links and A/B variants -------------------------------------------------------
broadcast_variants = sa.Table(
    "broadcast_variants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("broadcast_id", sa.Integer, sa.ForeignKey("broadcasts.id"), nullable=False),
    sa.Column("label", sa.String(8), nullable=False),  # A, B, C, D, E
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("winner", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("broadcast_id", "label", name="uq_broadcast_variants"),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),  # random; no personal data
    sa.Column("url", sa.Text, nullable=False),  # the original URL (+ UTM tags): the only target
    sa.Column("message_id", sa.Integer, nullable=True, index=True),  # the text that carried it
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=True, index=True),
    sa.Column("broadcast_id", sa.Integer, nullable=True, index=True),
    sa.Column("variant_id", sa.Integer, nullable=True),
    sa.Column("flow", sa.String(64), nullable=True),  # a timed flow's or a response's link
    sa.Column("created_at", TS, nullable=False),
)

link_clicks = sa.Table(
    "link_clicks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # the `on_click` trigger's cursor reads it
    sa.Column("link_id", sa.Integer, sa.ForeignKey("links.id"), nullable=False),
    sa.Column("contact_id", sa.Integer, nullable=True, index=True),
    sa.Column("first_at", TS, nullable=False),
    sa.Column("clicks", sa.Integer, nullable=False, default=1),
    # human | preview (a link-preview fetcher) | bot: only humans count as clicks in reports
    sa.Column("agent_kind", sa.String(8), nullable=False),
    sa.UniqueConstraint("link_id", "agent_kind", name="uq_link_clicks"),
)
