"""A turn's storage: how few statements it runs, and that the shortcuts read what a query would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.domain import TurnRecord
from bot.messages import InboundSms, OutboundSms
from bot.storage import Store
from bot.storage.compiled import Compiled
from bot.storage.tables import contacts

FAN = "+15555550100"
US = "+15550100000"


def sms(sid: str, body: str = "hi", media: tuple[str, ...] = ()) -> InboundSms:
    return InboundSms(sid, FAN, US, body, media_urls=media)


async def _turn(store: Store, sid: str, body: str = "hi") -> list[object]:
    rec, ctx = await store.begin_turn(sms(sid, body))
    assert ctx is not None
    record = TurnRecord(
        ctx.contact.id, ctx.conversation_id, rec.message_id,
        events=[("intent", {"name": "greet"}), ("utter", {"response": "utter_greet"})],
        replies=[OutboundSms(FAN, "Hey! 👋", sender=US)], dialogue={"stack": [], "slots": {}},
    )  # fmt: skip
    return list(await store.finish_turn(record))


async def test_a_known_fans_turn_is_two_statements_to_begin_and_four_to_finish(
    tmp_path: object,
) -> None:
    """Statements, not rows, are a turn's storage cost: pinned as SQLite itself counts them."""
    store = Store.open(f"sqlite:///{tmp_path}/t.db", hash_key=b"k")
    ran: list[str] = []
    sa.event.listen(store.db.engine, "connect", lambda c, _r: c.set_trace_callback(ran.append))
    store.db.engine.dispose()  # connections made from now on are traced
    try:
        await _turn(store, "SM1")  # the fan's first text creates the contact
        ran.clear()
        rec, ctx = await store.begin_turn(sms("SM2", "again"))
        begin = [s for s in ran if s.split()[0] not in ("BEGIN", "COMMIT")]
        assert len(begin) == 2, begin  # the fan (with what is pending), the text
        ran.clear()
        assert ctx is not None
        await store.finish_turn(
            TurnRecord(ctx.contact.id, ctx.conversation_id, rec.message_id,
                       events=[("intent", {"name": "greet"})],
                       replies=[OutboundSms(FAN, "Hey!", sender=US)], dialogue={})
        )  # fmt: skip
        finish = [s for s in ran if s.split()[0] not in ("BEGIN", "COMMIT")]
        # the text's status (and whether the fan was erased), the event, the dialogue, the reply
        assert len(finish) == 4, finish
    finally:
        store.close()


async def test_the_just_recorded_text_reads_as_the_pending_query_would(store: Store) -> None:
    await _turn(store, "SM1")
    at = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
    msg = InboundSms(
        "SM2", FAN, US, "naïve café ☕", media_urls=("https://x/1.jpg",), received_at=at
    )
    rec, ctx = await store.begin_turn(msg)
    assert ctx is not None and len(ctx.pending) == 1
    assert ctx.pending == (await store.load_turn(rec.contact.id)).pending  # read back by query


async def test_texts_waiting_from_before_are_pending_with_the_new_one(store: Store) -> None:
    await _turn(store, "SM1")
    await store.record_inbound(sms("SM2", "one"))  # recorded, not answered (a crash, a burst)
    rec, ctx = await store.begin_turn(sms("SM3", "two"))
    assert ctx is not None
    assert [p.body for p in ctx.pending] == ["one", "two"]
    assert ctx.pending[-1].message_id == rec.message_id


async def test_a_redelivered_text_still_unanswered_is_pending_once(store: Store) -> None:
    await _turn(store, "SM1")
    await store.record_inbound(sms("SM2", "early"))  # stored early, while another turn ran
    rec, ctx = await store.begin_turn(sms("SM2", "early"))
    assert rec.duplicate and ctx is not None
    assert [p.body for p in ctx.pending] == ["early"]


async def test_a_turn_whose_fan_was_erased_meanwhile_keeps_nothing(store: Store) -> None:
    await _turn(store, "SM1")
    rec, ctx = await store.begin_turn(sms("SM2", "my email is a@b.co"))
    assert ctx is not None
    await store.db.run(
        lambda c: c.execute(
            contacts.update().where(contacts.c.id == rec.contact.id).values(erased_at=sa.func.now())
        )
    )
    replies = await store.finish_turn(
        TurnRecord(ctx.contact.id, ctx.conversation_id, rec.message_id,
                   events=[("intent", {"name": "give_email"})],
                   replies=[OutboundSms(FAN, "Thanks!", sender=US)], broadcast_id=None)
    )  # fmt: skip
    assert replies == []
    assert [t for t, _ in await store.events_for(rec.contact.id)] == ["intent", "utter"]  # SM1's
    assert await store.replies_to(rec.message_id) == []


async def test_driver_level_errors_are_sqlalchemys_and_quote_no_value(store: Store) -> None:
    insert = Compiled(
        contacts.insert().values(
            phone=sa.bindparam("phone"), phone_hash=sa.bindparam("h"),
            created_at=sa.bindparam("at", type_=contacts.c.created_at.type),
        ),
        store.db.engine.dialect,
    )  # fmt: skip
    await store.db.run(insert.run, {"phone": "+15555550199", "h": "h1", "at": datetime.now(UTC)})
    with pytest.raises(sa.exc.IntegrityError) as caught:  # the same hash: not unique
        await store.db.run(
            insert.run, {"phone": "+15555550198", "h": "h1", "at": datetime.now(UTC)}
        )
    assert "+15555550198" not in str(caught.value)  # (PostgreSQL's own message names the key)
    assert (await store.contact_by_phone("+15555550199")) is not None  # the first one, intact
