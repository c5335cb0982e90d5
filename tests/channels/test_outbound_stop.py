"""STOP wins at send time: the opt-out check is the claim of each single send, taken only once
its connection and rate-limit slot are in hand, so no row passes a STOP committed before it.

Real store (SQLite; PostgreSQL when configured), real twilio SDK, the local Twilio server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.domain import ConsentChange
from bot.messages import OutboundSms
from bot.outbound import OutboundSender
from bot.runtime import Runtime
from bot.storage import Store
from bot.storage.tables import contacts, conversations, messages, suppressions
from tests.broadcasts.helpers import add_fans, broadcast, number
from tests.pipeline.test_pipeline import start, text

from .conftest import LocalTwilio

BODY = "New single out now"


async def broadcast_to(store: Store, fans: list[str]) -> tuple[int, list[int]]:
    ids = await add_fans(store, [{"phone": p} for p in fans])
    service = BroadcastService(store)
    bid = await broadcast(service, BODY)
    await service.send(bid)
    await service.enqueue(bid)
    return bid, ids


async def test_a_stop_committed_while_the_send_waits_for_a_connection_wins(
    store: Store, twilio: LocalTwilio
) -> None:
    """One connection: fan 0's send is at Twilio (held there) while fans 1-7 text STOP. Their rows
    were reserved long before, but the guarded claim comes only when a connection is free."""
    fans = [number(i) for i in range(8)]
    _, ids = await broadcast_to(store, fans)
    gateway = twilio.gateway(connections=1)
    sender = OutboundSender(store, gateway, rate_per_second=1000, lanes=1)
    twilio.server.hold()
    try:
        sending = asyncio.create_task(sender.drain())
        await twilio.server.wait_held(1)  # fan 0's request is on its way
        for contact_id in ids[1:]:  # STOP, committed, as the pipeline's compliance path does it
            await store.set_subscription(contact_id, ConsentChange("opt_out", "sms_keyword"))
        twilio.server.release()
        await sending
    finally:
        await gateway.aclose()

    assert Counter(m["to"] for m in twilio.server.accepted()) == {fans[0]: 1}
    assert await store.outbox_counts() == {"sent": 1, "cancelled": 7}


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(database_url)
    try:
        yield rt
    finally:
        await rt.close()


async def test_fans_texting_stop_during_a_broadcast_get_nothing_claimed_after_their_stop(
    runtime: Runtime, twilio: LocalTwilio
) -> None:
    """The race: 60 of 150 fans text STOP through the real pipeline while the broadcast goes out
    at 100 texts/s. Every copy a stopping fan got was claimed before their STOP committed.

    The STOPs come from the end of the list first, so whatever the machine's speed some reach
    fans still waiting for their turn and others fans whose copy is already out."""
    store = runtime.store
    fans = [number(i) for i in range(150)]
    bid, ids = await broadcast_to(store, fans)
    await with_conversations(store, ids)
    stopping = sorted(fans[::5] + fans[2::5], reverse=True)
    committed: dict[str, datetime] = {}
    gateway = twilio.gateway(connections=8)
    sender = OutboundSender(store, gateway, rate_per_second=100, lanes=2)
    await runtime.handle(text(number(999), "hi"))  # the pipeline is warm before the race

    async def stop(fan: str) -> None:
        await runtime.handle(text(fan, "STOP"))
        committed[fan] = datetime.now(UTC)  # handle() returns after the commit

    async def texting() -> None:
        for fan in stopping:
            await stop(fan)

    try:
        await asyncio.gather(sender.drain(), texting())
        await sender.drain()  # the STOP confirmations
    finally:
        await gateway.aclose()

    got = Counter(m["to"] for m in twilio.server.accepted() if m["body"] == BODY)
    assert set(got.values()) == {1}  # nobody twice
    claims = await claimed_at(store, bid)
    late = [f for f in stopping if f in got and claims[f] >= committed[f]]
    assert late == []  # no send whose claim follows a committed STOP
    cancelled = [f for f in stopping if f not in got]
    assert cancelled, "the race must have happened: some STOPs beat their fan's claim"
    assert all(got[f] == 1 for f in fans if f not in stopping)
    confirmations = Counter(m["to"] for m in twilio.server.accepted() if m["body"] != BODY)
    assert set(stopping) <= set(confirmations)  # the confirmation itself still goes out


async def with_conversations(store: Store, contact_ids: list[int]) -> None:
    """Fans written straight into the store get the conversation a first text would open."""
    at = datetime.now(UTC)
    rows = [{"contact_id": i, "status": "bot", "dialogue": {}, "updated_at": at}
            for i in contact_ids]  # fmt: skip
    await store.db.run(lambda c: c.execute(conversations.insert(), rows))


async def claimed_at(store: Store, broadcast_id: int) -> dict[str, datetime]:
    def read(conn: sa.Connection) -> dict[str, datetime]:
        rows = conn.execute(
            sa.select(messages.c.to_number, messages.c.claimed_at).where(
                messages.c.broadcast_id == broadcast_id, messages.c.kind == "broadcast",
                messages.c.claimed_at.is_not(None),
            )
        ).all()  # fmt: skip
        return {to: at if at.tzinfo else at.replace(tzinfo=UTC) for to, at in rows}

    return await store.db.run(read)


async def test_the_claim_guard_itself_refuses_every_fan_who_must_not_get_the_text(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    """The guard on its own (changes written behind the back of the usual paths, which would
    also cancel the queued rows): opted out, erased, never subscribed (for a broadcast),
    suppressed, and a suppressed number without a contact. Compliance texts always go."""
    fans = [number(i) for i in range(6)]
    _, ids = await broadcast_to(store, fans)
    now = datetime.now(UTC)

    def behind_the_back(conn: sa.Connection) -> None:
        c = contacts.c
        conn.execute(contacts.update().where(c.id == ids[0]).values(subscription="unsubscribed"))
        conn.execute(contacts.update().where(c.id == ids[1]).values(erased_at=now))
        conn.execute(contacts.update().where(c.id == ids[2]).values(subscription="pending"))
        for phone in (fans[3], number(9)):
            conn.execute(
                suppressions.insert().values(
                    phone_hash=store.phone_hash(phone), reason="erased", at=now
                )
            )

    await store.db.run(behind_the_back)
    await store.queue_outbound([OutboundSms(number(9), "system text"),
                                OutboundSms(number(8), "system text"),
                                OutboundSms(fans[0], "You're unsubscribed", kind="compliance")])  # fmt: skip
    sender = OutboundSender(store, gateway, rate_per_second=1000)

    await sender.drain()

    got = sorted((m["to"], m["body"]) for m in twilio.server.accepted())
    assert got == sorted([
        (fans[0], "You're unsubscribed"), (fans[4], BODY), (fans[5], BODY),
        (number(8), "system text"),
    ])  # fmt: skip
    assert (await store.outbox_counts())["cancelled"] == 5
