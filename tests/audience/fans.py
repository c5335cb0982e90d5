"""The scheduler tests' line and fans: the demo's content without its NLU model (timed turns
read no fan text: quick to start), and fans written straight into the database (contact,
conversation and opt-in, the consent ledger the `after_signup` trigger reads)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.actions import ActionRunner
from bot.content import Content, load_content
from bot.locks import ContactLocks
from bot.pipeline import Pipeline
from bot.runtime import _libpq_dsn, build_engine
from bot.storage import Store
from bot.storage.flow_job_store import FlowJob
from bot.storage.tables import consent_events, contacts, conversations, messages

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def demo_content() -> Content:
    return load_content(ROOT)


def timed_pipeline(store: Store) -> Pipeline:
    """A pipeline for timed turns on `store` (close its `locks` and `actions` after)."""
    pg = store.db.engine.dialect.name == "postgresql"
    return Pipeline(
        store=store, locks=ContactLocks(_libpq_dsn(store.db.engine.url) if pg else None),
        engine=build_engine(demo_content(), None), interpreter=None,
        actions=ActionRunner(package=None),
    )  # fmt: skip


async def close_pipeline(pipeline: Pipeline) -> None:
    await pipeline.actions.aclose()
    await pipeline.locks.aclose()


def number(i: int) -> str:
    return f"+1415666{i:04d}"


def insert_fans(
    conn: Connection,
    phone_hash: Any,
    phones: Sequence[str],
    *,
    profiles: Sequence[dict[str, Any]] | None = None,
    signed_up: Sequence[datetime] | None = None,
) -> list[int]:
    at = datetime.now(UTC)
    rows = [
        {"phone": p, "phone_hash": phone_hash(p), "subscription": "subscribed",
         "profile": profiles[i] if profiles else {}, "created_at": at,
         "subscribed_at": signed_up[i] if signed_up else at}
        for i, p in enumerate(phones)
    ]  # fmt: skip
    ids = list(
        conn.execute(
            contacts.insert().returning(contacts.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    conn.execute(
        conversations.insert(),
        [{"contact_id": c, "status": "bot", "dialogue": {}, "updated_at": at} for c in ids],
    )
    conn.execute(
        consent_events.insert(),
        [{"contact_id": c, "action": "opt_in", "method": "web_form", "at": r["subscribed_at"]}
         for c, r in zip(ids, rows, strict=True)],
    )  # fmt: skip
    return ids


def timed_texts(conn: Connection, contact_id: int | None = None) -> list[Any]:
    m = messages.c
    query = sa.select(m.contact_id, m.body, m.status, m.not_before).where(m.kind == "timed")
    if contact_id is not None:
        query = query.where(m.contact_id == contact_id)
    return conn.execute(query.order_by(m.id)).all()


def job_of(row: Any) -> FlowJob:
    return FlowJob(row.id, row.contact_id, row.flow, row.trigger, row.occurrence, row.step,
                   row.attempts)  # fmt: skip
