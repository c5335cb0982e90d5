"""The inbox's tables (agents, their sessions, login attempts) on the schema's one `metadata`.

Escalations, notes (private `messages`) and tags (the contact profile's `tags`) live in the core
tables; only what belongs to the humans answering fans is here. Migration 0002 creates these.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.tables import TS, metadata

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),  # stored lower-case
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),  # argon2id, encoded
    sa.Column("role", sa.String(16), nullable=False, default="agent"),  # admin | agent
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_login_at", TS, nullable=True),
)

agent_sessions = sa.Table(
    "agent_sessions",
    metadata,
    # sha256 of the random token in the signed cookie: a leaked table cannot be replayed
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id"), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_login_attempts_username_at", "username", "at"),
    sa.Index("ix_login_attempts_ip_at", "ip", "at"),
)
