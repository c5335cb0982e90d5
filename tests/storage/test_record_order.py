"""A fan's texts are answered in the order they were stored, across processes (PostgreSQL).

Two webhooks of one fan can record texts at once in two processes; ids follow the inserts, not
the commits. A turn holding the fan's lock must not read the pending texts while a text with a
lower id is still being recorded, or it answers the later text first (`bench/chaos.py`'s
`burst out of order` saw it under load). Here one recording is held open in its transaction
while another process's turn begins: the turn waits for it, then answers both, in order."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from bot.messages import InboundSms
from bot.storage import Store

FAN, US = "+14155550171", "+15005550006"


def _lock_waits(store: Store) -> int:
    with store.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()


def test_a_turn_waits_for_a_text_still_being_recorded(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: recordings never overlap")
    web1, web2 = (Store.open(database_url, hash_key=b"k") for _ in range(2))
    try:
        first = asyncio.run(web1.record_inbound(InboundSms("SMfirst0", FAN, US, "hi")))
        with web1.db.engine.connect() as conn:
            tx = conn.begin()
            earlier = web1._record_inbound(conn, InboundSms("SMearly1", FAN, US, "one"))
            with ThreadPoolExecutor(1) as pool:
                turn = pool.submit(
                    lambda: asyncio.run(web2.begin_turn(InboundSms("SMlater2", FAN, US, "two")))
                )
                deadline = time.monotonic() + 30  # bounded: the turn blocks, or it has ended
                while not turn.done() and not _lock_waits(web1) and time.monotonic() < deadline:
                    time.sleep(0.02)  # polling a state (a lock wait), not timing a result
                tx.commit()
                recorded, ctx = turn.result(timeout=60)
        assert ctx is not None
        assert [p.message_id for p in ctx.pending] == [
            first.message_id, earlier.message_id, recorded.message_id
        ]  # fmt: skip
    finally:
        web1.close()
        web2.close()
