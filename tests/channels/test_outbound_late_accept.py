"""A send the provider accepts after our request timed out is never sent a second time: the
row stays in doubt until no request of its claim can still land, and only a lookup after that
may queue it again. Reproduced with the local Twilio server holding the create past the
gateway's timeout and accepting it afterwards (as Twilio keeps a request it has received)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.outbound import OutboundSender
from bot.storage.store import Store
from bot.storage.tables import messages

from .conftest import LocalTwilio
from .test_outbound_store import queue_replies

RUN = random.Random().randrange(1000, 9999)


async def _an_hour_later(store: Store, outbox_id: int) -> None:
    """The late-accept window has passed: the claim is an hour old and its lookup is due."""
    now = datetime.now(UTC)
    await store.db.run(
        lambda c: c.execute(
            messages.update()
            .where(messages.c.id == outbox_id)
            .values(sent_at=now - timedelta(hours=2), claimed_at=now - timedelta(hours=2),
                    not_before=now - timedelta(seconds=1))
        )
    )  # fmt: skip


async def test_a_late_accept_after_a_timeout_gives_one_copy(
    store: Store, twilio: LocalTwilio
) -> None:
    fan = f"+1{RUN}52{random.randrange(10_000):04d}"
    [outbox_id] = await queue_replies(store, fan, ["only once"])
    gateway = twilio.gateway(timeout=0.5)  # the create is held past it: its answer never comes
    twilio.server.set_faults(accept_abandoned=True)
    twilio.server.hold()
    sender = OutboundSender(store, gateway, rate_per_second=100, backoff_base=0,
                            lookup_base_s=0, late_accept_s=600)  # fmt: skip
    try:
        await sender.drain()  # times out; the lookup at once finds nothing (not accepted yet)
        assert await store.message_status(outbox_id) == "in_doubt"
        await sender.drain()  # never resent while its request may still land
        await sender.settle_in_doubt()  # nor looked up as "not found" before the window ends
        assert await store.message_status(outbox_id) == "in_doubt"
        twilio.server.release()  # Twilio accepts the first request after all
        await twilio.server.wait_accepted(1, to=fan)
        await _an_hour_later(store, outbox_id)
        await sender.settle_in_doubt()  # the lookup finds it: sent, with that very message
        await sender.drain()
    finally:
        await gateway.aclose()
    assert [m["body"] for m in twilio.server.accepted(to=fan)] == ["only once"]
    assert await store.message_status(outbox_id) == "sent"


async def test_a_send_never_accepted_is_sent_again_once_the_window_has_passed(
    store: Store, twilio: LocalTwilio
) -> None:
    fan = f"+1{RUN}51{random.randrange(10_000):04d}"
    [outbox_id] = await queue_replies(store, fan, ["lost on the way"])
    gateway = twilio.gateway(timeout=0.5)
    twilio.server.hold()  # held, and dropped with its client: never accepted
    sender = OutboundSender(store, gateway, rate_per_second=100, backoff_base=0,
                            lookup_base_s=0, late_accept_s=600)  # fmt: skip
    try:
        await sender.drain()
        assert await store.message_status(outbox_id) == "in_doubt"
        twilio.server.release()
        await _an_hour_later(store, outbox_id)
        settled = await sender.settle_in_doubt()  # not found after the window: queued again
        assert settled.requeued == 1
        await sender.drain()
    finally:
        await gateway.aclose()
    assert [m["body"] for m in twilio.server.accepted(to=fan)] == ["lost on the way"]
    assert await store.message_status(outbox_id) == "sent"
