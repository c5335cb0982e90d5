"""Erasure against texts in flight: a turn that began before the erasure commits its inbound
text and replies after it, or a text recorded outside the fan's lock; nothing of the fan may
stay. On PostgreSQL erasure takes the fan's (advisory) lock and waits for the turn; on SQLite
from another process it cannot, so the turn finds the fan erased and keeps nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from bot.audience.privacy import erase_fan
from bot.domain import ConsentChange, TurnRecord
from bot.locks import ContactLocks
from bot.messages import InboundSms, OutboundSms
from bot.storage import Store
from bot.storage.fan_records import FanRecords
from bot.storage.tables import contacts, events, messages

FAN, OURS = "+14155550177", "+15005550006"


def _pg_dsn(database_url: str) -> str | None:
    if not database_url.startswith("postgresql"):
        return None
    return sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(False)


def _waiting_for_a_lock(store: Store, kind: str) -> bool:
    if store.db.is_sqlite:
        return False
    with store.db.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND (wait_event = 'advisory') = (:kind = 'advisory')"
                    " AND datname = current_database()"
                ),
                {"kind": kind},
            ).scalar_one()
        )


async def _until_done_or_blocked(
    store: Store, task: asyncio.Future[Any], kind: str = "advisory"
) -> None:
    """Polls a state, not a timing: the erasure has finished, or waits for the fan's lock."""
    deadline = time.monotonic() + 60
    while not task.done() and not _waiting_for_a_lock(store, kind):
        assert time.monotonic() < deadline, "the erasure neither finished nor waited"
        await asyncio.sleep(0.02)


async def _kept(store: Store, cid: int) -> list[Any]:
    """Every message row of the contact that still holds personal data."""
    return await store.db.run(
        lambda c: c.execute(
            sa.select(messages.c.id, messages.c.direction, messages.c.body)
            .where(messages.c.contact_id == cid)
            .where(
                sa.or_(
                    messages.c.body != "",
                    messages.c.from_number == FAN,
                    messages.c.to_number == FAN,
                )
            )
        ).all()
    )


async def test_a_turn_in_flight_during_erasure_leaves_nothing_behind(
    store: Store, database_url: str
) -> None:
    locks = ContactLocks(_pg_dsn(database_url))  # the server's locks (another process's)
    try:
        async with locks.hold(FAN):  # the turn, as the pipeline runs it
            rec, ctx = await store.begin_turn(InboundSms("SM1", FAN, OURS, "my email is a@b.co"))
            assert ctx is not None
            cid = rec.contact.id
            await store.set_subscription(cid, ConsentChange("opt_in", "sms_yes"))
            erasure = asyncio.ensure_future(erase_fan(store, FAN))
            await _until_done_or_blocked(store, erasure)
            record = TurnRecord(cid, ctx.conversation_id, rec.message_id)
            record.replies.append(OutboundSms(to=FAN, body="Got it, a@b.co!", sender=OURS))
            record.events.append(("intent", {"text": "my email is a@b.co"}))
            record.profile_updates["email"] = "a@b.co"
            await store.finish_turn(record)
        await erasure
    finally:
        await locks.aclose()
    assert await _kept(store, cid) == []
    data = await store.db.run(
        lambda c: c.execute(sa.select(events.c.data).where(events.c.contact_id == cid)).all()
    )
    assert all(not d for (d,) in data)
    profile = await store.db.run(
        lambda c: c.execute(sa.select(contacts.c.profile).where(contacts.c.id == cid)).scalar()
    )
    assert not profile


async def test_a_text_recorded_outside_the_lock_during_erasure_goes_to_a_new_contact(
    store: Store, database_url: str
) -> None:
    """The webhook stores a text early (without the fan's lock) while another turn of the fan
    runs; an erasure committing meanwhile must not leave that text on the erased contact."""
    if store.db.is_sqlite:
        pytest.skip("one SQLite writer at a time: the erasure and the text cannot interleave")
    first = await store.record_inbound(InboundSms("SM1", FAN, OURS, "hi"))
    cid = first.contact.id
    with store.db.engine.connect() as conn:
        tx = conn.begin()
        FanRecords(store)._erase(conn, FAN)  # the erasure, written but not committed yet
        early = asyncio.ensure_future(
            store.record_inbound(InboundSms("SM2", FAN, OURS, "my email is a@b.co"))
        )
        await _until_done_or_blocked(store, early, "Lock")
        tx.commit()
    recorded = await early
    assert await _kept(store, cid) == []
    assert recorded.contact.id != cid and recorded.contact.subscription == "unsubscribed"
