"""The reports' columns (migration 0017): an event's `flow` and `step` written by the turn's own
INSERT and filled for existing rows by the migration, and a broadcast text's `variant_id` filled
from its recipient row; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from bot.domain import TurnRecord
from bot.messages import InboundSms
from bot.storage import Store
from bot.storage.db import MIGRATIONS, create_engine, normalise_url
from bot.storage.tables import events

FAN = "+15555550100"
US = "+15550100000"


async def test_a_turn_writes_the_flow_and_step_of_its_events(store: Store) -> None:
    rec = await store.record_inbound(InboundSms("SM1", FAN, US, "tour"))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(
        TurnRecord(
            rec.contact.id, ctx.conversation_id, rec.message_id,
            events=[("intent", {"intent": "tour"}),
                    ("flow_started", {"flow": "tour", "trigger": "intent"}),
                    ("step", {"flow": "tour", "step": "ask_city"}),
                    ("slot_set", {"name": "flow", "value": {"not": "a flow"}})],
        )
    )  # fmt: skip
    rows = store.db.run_sync(
        lambda c: c.execute(
            sa.select(events.c.type, events.c.flow, events.c.step).order_by(events.c.id)
        ).all()
    )
    assert [tuple(r) for r in rows] == [
        ("intent", None, None),
        ("flow_started", "tour", None),
        ("step", "tour", "ask_city"),
        ("slot_set", None, None),
    ]


def _migrate(conn: sa.Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def test_the_migration_fills_existing_rows(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(normalise_url(database_url))
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            _migrate(conn, "0016_report_indexes")
            for cid in (1, 2, 3):
                conn.execute(sa.text(
                    "INSERT INTO contacts (id, phone_hash, profile, subscription, created_at) "
                    "VALUES (:id, :h, '{}', 'subscribed', :at)"), {"id": cid, "h": f"h{cid}", "at": at})  # fmt: skip
            insert_event = sa.text(
                "INSERT INTO events (contact_id, type, data, at) VALUES (1, :type, :data, :at)"
            )
            for kind, data in (
                ("flow_started", '{"flow": "tour", "trigger": "intent"}'),
                ("step", '{"flow": "tour", "step": "ask_city"}'),
                ("wait", '{"flow": "welcome", "step": "later", "delay_s": 60}'),
                ("intent", '{"intent": "greet"}'),
            ):
                conn.execute(insert_event, {"type": kind, "data": data, "at": at})
            # an A/B broadcast (fans 1 and 2 texted, fan 3 held) and one of a single body
            conn.execute(sa.text(
                "INSERT INTO broadcasts (id, name, body, media_urls, segment, status, rate, "
                "quiet_start, quiet_end, default_zone, cursor, enqueued, created_at) VALUES "
                "(:id, 'b', 'hi', '[]', '{}', 'sending', 1, '08:00', '21:00', 'UTC', 0, 0, :at)"),
                [{"id": 1, "at": at}, {"id": 2, "at": at}])  # fmt: skip
            conn.execute(sa.text(
                "INSERT INTO broadcast_variants (id, broadcast_id, label, body, winner) VALUES "
                "(7, 1, 'A', 'hi A', false), (8, 1, 'B', 'hi B', false)"))  # fmt: skip
            conn.execute(sa.text(
                "INSERT INTO broadcast_recipients (broadcast_id, contact_id, variant_id, "
                "created_at) VALUES (1, 1, 7, :at), (1, 2, 8, :at), (1, 3, NULL, :at), "
                "(2, 1, NULL, :at)"), {"at": at})  # fmt: skip
            conn.execute(sa.text(
                "INSERT INTO messages (contact_id, direction, body, media_urls, kind, status, "
                "broadcast_id, private, attempts, lookups, created_at) VALUES "
                "(1, 'out', 'hi A', '[]', 'broadcast', 'sent', 1, false, 1, 0, :at), "
                "(2, 'out', 'hi B', '[]', 'broadcast', 'sent', 1, false, 1, 0, :at), "
                "(1, 'out', 'hi', '[]', 'broadcast', 'sent', 2, false, 1, 0, :at), "
                "(1, 'in', 'ok', '[]', 'sms', 'processed', 1, false, 0, 0, :at)"), {"at": at})  # fmt: skip
            _migrate(conn, "0017_report_columns")
            got_events = conn.execute(
                sa.text("SELECT type, flow, step FROM events ORDER BY id")
            ).all()
            got_texts = conn.execute(sa.text(
                "SELECT contact_id, broadcast_id, direction, variant_id FROM messages ORDER BY id"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    assert [tuple(r) for r in got_events] == [
        ("flow_started", "tour", None),
        ("step", "tour", "ask_city"),
        ("wait", "welcome", "later"),
        ("intent", None, None),
    ]
    assert [tuple(r) for r in got_texts] == [
        (1, 1, "out", 7),
        (2, 1, "out", 8),
        (1, 2, "out", None),
        (1, 1, "in", None),
    ]
