"""OutboundSender against the real Store (SQLite; PostgreSQL when FANLINE_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.domain import TurnRecord
from bot.messages import InboundSms, OutboundSms
from bot.outbound import OutboundSender
from bot.storage.store import Store

from .conftest import OUR_NUMBER, LocalTwilio

RUN = random.Random().randrange(1000, 9999)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """The real store on each backend (tests/conftest.py: SQLite, and PostgreSQL in a schema
    of its own when FANLINE_TEST_DATABASE_URL is set)."""
    s = Store.open(database_url, hash_key=b"test-key")
    yield s
    s.close()


async def queue_replies(store: Store, fan: str, bodies: list[str]) -> list[int]:
    """Through production code: record an inbound text, finish a turn that queues replies."""
    rec = await store.record_inbound(InboundSms(f"SM{uuid.uuid4().hex}", fan, OUR_NUMBER, "hi"))
    ctx = await store.load_turn(rec.contact.id)
    replies = [OutboundSms(fan, body) for body in bodies]
    queued = await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id, replies=replies)
    )
    return [q.outbox_id for q in queued]


async def test_storm_delivers_every_stored_reply_exactly_once(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    fans = [f"+1{RUN}77{n:04d}" for n in range(20)]
    ids = []
    for i, fan in enumerate(fans):
        ids += await queue_replies(store, fan, [f"{fan[-4:]}-{k}" for k in range(i % 3 + 1)])
    twilio.server.set_faults(rate_429=0.3, rate_500=0.15, rate_drop=0.1, retry_after=0)
    sender = OutboundSender(
        store, gateway, rate_per_second=10_000, batch_size=10, max_attempts=60, backoff_base=0,
        lookup_base_s=0, max_lookups=60, late_accept_s=0,  # this server never accepts late
    )  # fmt: skip

    for _ in range(100):  # a dropped connection may have been accepted: settled by lookups
        await sender.drain()
        await sender.settle_in_doubt()
        if set(await store.outbox_counts()) == {"sent"}:
            break

    assert [await store.message_status(i) for i in ids] == ["sent"] * len(ids)
    bodies = Counter(m["body"] for m in twilio.server.accepted())
    assert len(bodies) == len(ids) and set(bodies.values()) == {1}
    assert sender.counts["retried"] > 0


async def test_carrier_opt_out_marks_the_fan_and_cancels_the_rest(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    fan = f"+1{RUN}880999"
    [first] = await queue_replies(store, fan, ["first"])
    twilio.server.set_faults(permanent={fan: 21610})
    sender = OutboundSender(store, gateway, rate_per_second=1000, backoff_base=0)
    await sender.drain()
    [later] = await queue_replies(store, fan, ["second"])
    await sender.drain()

    assert await store.message_status(first) == "failed"
    assert await store.message_status(later) == "cancelled"
    contact = await store.contact_by_phone(fan)
    assert contact is not None and contact.subscription == "unsubscribed"
    assert twilio.server.accepted() == []


async def test_an_answer_lost_after_twilio_accepted_is_looked_up_not_sent_again(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    """Twilio accepts, then the connection drops: the sender can't know, so it asks Twilio."""
    fan = f"+1{RUN}66{random.randrange(10_000):04d}"
    [outbox_id] = await queue_replies(store, fan, ["only once, please"])
    twilio.server.set_faults(count_lost_answer=1)
    sender = OutboundSender(store, gateway, rate_per_second=1000, backoff_base=0)

    await sender.drain()

    [accepted] = twilio.server.accepted(to=fan)  # one copy, not two
    assert await store.message_status(outbox_id) == "sent"
    assert sender.counts["retried"] == 0
    assert accepted["body"] == "only once, please"
