"""The store's units of work on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bot.domain import ConsentChange, EscalationSpec, TurnRecord
from bot.messages import DeliveryReport, InboundSms, OutboundSms
from bot.outbound import SendResult
from bot.storage import Store
from bot.storage.tables import contacts, messages

FAN = "+15555550100"
US = "+15550100000"


def sms(sid: str, body: str = "hi", sender: str = FAN) -> InboundSms:
    return InboundSms(sid, sender, US, body)


async def test_recording_is_idempotent_on_the_channel_id(store: Store) -> None:
    first = await store.record_inbound(sms("SM1"))
    again = await store.record_inbound(sms("SM1", body="changed"))
    assert first.is_new_contact and not first.duplicate
    assert again.duplicate and again.message_id == first.message_id
    ctx = await store.load_turn(first.contact.id)
    assert [p.body for p in ctx.pending] == ["hi"]  # the second delivery changed nothing


async def test_a_second_text_is_the_same_contact_and_pending_in_order(store: Store) -> None:
    a = await store.record_inbound(sms("SM1", "one"))
    b = await store.record_inbound(sms("SM2", "two"))
    assert b.contact.id == a.contact.id and not b.is_new_contact
    ctx = await store.load_turn(a.contact.id)
    assert [p.body for p in ctx.pending] == ["one", "two"]
    assert ctx.status == "bot" and ctx.contact.subscription == "pending"


async def test_finish_turn_writes_everything_in_one_go(store: Store) -> None:
    rec = await store.record_inbound(sms("SM1", "I want a person"))
    ctx = await store.load_turn(rec.contact.id)
    replies = await store.finish_turn(
        TurnRecord(
            rec.contact.id, ctx.conversation_id, rec.message_id,
            events=[("intent", {"intent": "human_handoff"})],
            replies=[OutboundSms(FAN, "A person will text you back.", sender=US)],
            dialogue={"stack": [], "slots": {"zip": "90210"}},
            status="open",
            profile_updates={"zip": "90210"},
            escalation=EscalationSpec("fan_asked", "normal", (("human_handoff", 0.9),)),
        )
    )  # fmt: skip
    assert [q.reply.body for q in replies] == ["A person will text you back."]
    ctx = await store.load_turn(rec.contact.id)
    assert ctx.status == "open" and ctx.pending == ()
    assert ctx.dialogue["slots"] == {"zip": "90210"}
    assert ctx.contact.profile == {"zip": "90210"}
    assert [e[0] for e in await store.events_for(rec.contact.id)] == ["intent"]
    assert [q.reply.body for q in await store.replies_to(rec.message_id)] == [
        "A person will text you back."
    ]


async def _queue(store: Store, n: int, body: str = "news", kind: str = "reply") -> int:
    rec = await store.record_inbound(sms(f"SMq{n}{body}"))
    ctx = await store.load_turn(rec.contact.id)
    replies = [OutboundSms(FAN, f"{body} {i}", kind=kind) for i in range(n)]
    await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id, replies=replies)
    )
    return rec.contact.id


async def test_opting_out_cancels_queued_messages_but_not_the_confirmation(store: Store) -> None:
    contact_id = await _queue(store, 3)
    rec = await store.record_inbound(sms("SMstop", "STOP"))
    ctx = await store.load_turn(contact_id)
    await store.finish_turn(
        TurnRecord(
            contact_id, ctx.conversation_id, rec.message_id,
            replies=[OutboundSms(FAN, "You're unsubscribed.", kind="compliance")],
            consent=ConsentChange("opt_out", "sms_keyword"),
        )
    )  # fmt: skip
    claimed = await store.claim_outbox(10)
    assert [i.body for i in claimed] == ["You're unsubscribed."]
    assert (await store.contact_by_phone(FAN)).subscription == "unsubscribed"


async def test_claims_are_exclusive_under_concurrency(store: Store) -> None:
    await _queue(store, 200)
    # several claimers at once, as several sender processes would be
    results = await asyncio.gather(*(store.claim_outbox(15) for _ in range(20)))
    ids = [i.id for batch in results for i in batch]
    assert len(ids) == len(set(ids)) == 200


def test_claims_are_exclusive_across_threads_and_engines(database_url: str) -> None:
    """Separate engines (as separate processes have) claiming the same outbox at once."""
    stores = [Store.open(database_url, hash_key=b"k") for _ in range(3)]
    try:
        asyncio.run(_queue(stores[0], 150))

        def claim_all(s: Store) -> list[int]:
            got: list[int] = []
            while batch := asyncio.run(s.claim_outbox(7)):
                got += [i.id for i in batch]
            return got

        with ThreadPoolExecutor(3) as pool:
            ids = [i for part in pool.map(claim_all, stores) for i in part]
        assert len(ids) == len(set(ids)) == 150
    finally:
        for s in stores:
            s.close()


async def test_a_fan_who_opted_out_after_queueing_gets_nothing(store: Store) -> None:
    contact_id = await _queue(store, 2, kind="broadcast")
    await store.set_subscription(contact_id, ConsentChange("opt_out", "web"))
    assert await store.claim_outbox(10) == []


async def test_marketing_texts_need_a_subscribed_fan_not_a_known_one(store: Store) -> None:
    """A fan who only texted us (pending) gets replies, never a broadcast's or a timed flow's
    text: the claim itself checks, whatever put the text in the outbox."""
    contact_id = await _queue(store, 1, body="reply")
    await _queue(store, 1, body="timed", kind="timed")
    await _queue(store, 1, body="news", kind="broadcast")
    hour = datetime.now(UTC).hour  # a zone where it is midday: quiet hours hold nothing
    offset = (12 - hour + 12) % 24 - 12
    midday = {"timezone": f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"}

    def place(conn: Any) -> None:
        conn.execute(contacts.update().where(contacts.c.id == contact_id).values(profile=midday))

    await store.db.run(place)
    assert [i.body for i in await store.claim_outbox(10)] == ["reply 0"]

    def statuses(conn: Any) -> dict[str, str]:
        m = messages.c
        return dict(conn.execute(sa.select(m.body, m.status).where(m.direction == "out")).all())

    assert await store.db.run(statuses) == {
        "reply 0": "sending", "timed 0": "cancelled", "news 0": "cancelled"
    }  # fmt: skip


async def test_delivery_reports_never_move_backwards(store: Store) -> None:
    await _queue(store, 1)
    [item] = await store.claim_outbox(5)
    await store.outbox_sent([(item.id, "SM" + "a" * 32, 1, "GSM-7")])
    assert await store.apply_delivery_report(DeliveryReport("SM" + "a" * 32, "delivered"))
    assert await store.apply_delivery_report(DeliveryReport("SM" + "a" * 32, "sent"))
    assert await store.message_status(item.id) == "delivered"
    assert not await store.apply_delivery_report(DeliveryReport("SM" + "b" * 32, "sent"))


async def test_a_report_that_beats_the_sids_commit_is_applied_when_it_is_stored(
    store: Store,
) -> None:
    """Twilio can call back before the sender has stored the SID it was just given: the report
    is kept and applied in the transaction that stores the SID, on either path that stores one
    (the send's result, or a stale send settled by a lookup). It used to be dropped."""
    await _queue(store, 2)
    first, second = await store.claim_outbox(5)
    early, settled = "SM" + "e" * 32, "SM" + "f" * 32
    assert not await store.apply_delivery_report(DeliveryReport(early, "sent"))
    assert not await store.apply_delivery_report(DeliveryReport(early, "undelivered", 30003))
    assert not await store.apply_delivery_report(DeliveryReport(early, "sent"))  # late, older
    assert not await store.apply_delivery_report(DeliveryReport(settled, "delivered"))
    await store.outbox_sent([(first.id, early, 1, "GSM-7")])
    await store.settle_sending([(second, [SendResult(settled, "sent", 1)])])
    assert await store.message_status(first.id) == "undelivered"
    assert await store.message_status(second.id) == "delivered"
    # applied once: a report for the same SID now finds the message itself
    assert await store.apply_delivery_report(DeliveryReport(early, "delivered"))


async def test_carrier_opt_out_error_unsubscribes_the_fan(store: Store) -> None:
    contact_id = await _queue(store, 2)
    first, _second = await store.claim_outbox(1) + [None]  # type: ignore[list-item]
    await store.outbox_failed(first.id, 21610, "Attempt to send to unsubscribed recipient")
    assert (await store.contact_by_phone(FAN)).subscription == "unsubscribed"
    assert await store.claim_outbox(5) == []  # the other queued text is cancelled
    assert contact_id == first.contact_id


async def test_retry_requeues_with_a_delay(store: Store) -> None:
    await _queue(store, 1)
    [item] = await store.claim_outbox(5)
    await store.outbox_retry(item.id, 3600, "429")
    assert await store.claim_outbox(5) == []  # not due for an hour
    assert await store.message_status(item.id) == "queued"


async def test_inline_replies_skip_the_sender_until_released(store: Store) -> None:
    from datetime import timedelta

    from bot.messages import utcnow

    rec = await store.record_inbound(sms("SMt"))
    ctx = await store.load_turn(rec.contact.id)
    replies = await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id,
                   replies=[OutboundSms(FAN, "a"), OutboundSms(FAN, "b")],
                   inline_until=utcnow() + timedelta(seconds=5))
    )  # fmt: skip
    assert [q.status for q in replies] == ["twiml", "twiml"]
    assert await store.claim_outbox(5) == []  # answered inline: never sent again
    await store.release_held([q.outbox_id for q in replies])  # the webhook ran out of time
    assert [i.body for i in await store.claim_outbox(5)] == ["a", "b"]


async def test_replies_committed_after_the_inline_deadline_go_to_the_sender(store: Store) -> None:
    from datetime import timedelta

    from bot.messages import utcnow

    rec = await store.record_inbound(sms("SMlate"))
    ctx = await store.load_turn(rec.contact.id)
    replies = await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id,
                   replies=[OutboundSms(FAN, "late")], inline_until=utcnow() - timedelta(seconds=1))
    )  # fmt: skip
    assert [q.status for q in replies] == ["queued"]
    assert [i.body for i in await store.claim_outbox(5)] == ["late"]
