"""The whole server over HTTP: signed Twilio webhooks in, the real SDK out to a local Twilio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from .stack import INLINE_BUDGET_S, OUR_NUMBER, Stack, fan, running_stack

_stack = running_stack  # the whole server, shared with the durability and browser tests


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    # these tests read the inline answer: a budget that a turn on a loaded machine cannot run
    # past (a bound, not a speed claim; `slow_stack` takes the other path)
    async for s in _stack(database_url, reply_budget_s=INLINE_BUDGET_S):
        yield s


@pytest.fixture
async def slow_stack(database_url: str) -> AsyncIterator[Stack]:
    """A reply budget of zero: every reply goes out through the outbox and the SDK."""
    async for s in _stack(database_url, reply_budget_s=0.0):
        yield s


async def test_a_signed_text_is_answered_inline_with_twiml(stack: Stack) -> None:
    r = await stack.text(fan(), "hi there")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert "<Message>" in r.text and "YES" in r.text  # the opt-in question


@pytest.mark.parametrize("signature", ["forged", None])
async def test_forged_or_unsigned_requests_get_403_and_record_nothing(
    stack: Stack, signature: str | None
) -> None:
    number = fan()
    form = {"From": number, "To": OUR_NUMBER, "Body": "hi", "MessageSid": "SMforged"}
    headers = {"X-Twilio-Signature": signature} if signature else {}
    r = await stack.http.post("/webhooks/twilio/sms", data=form, headers=headers)
    assert r.status_code == 403
    assert "hi" not in r.text and number not in r.text
    assert await stack.store.contact_by_phone(number) is None


async def test_the_same_message_sid_twice_is_one_turn_with_the_same_answer(stack: Stack) -> None:
    number = fan()
    first = await stack.text(number, "hello", sid="SM" + "5a" * 16)
    second = await stack.text(number, "hello", sid="SM" + "5a" * 16)
    assert first.text == second.text and "<Message>" in first.text
    contact = await stack.store.contact_by_phone(number)
    intents = [e for e in await stack.store.events_for(contact.id) if e[0] == "flow_started"]
    assert len(intents) == 1


async def test_a_malformed_webhook_gets_400_without_echo(stack: Stack) -> None:
    form = {"To": OUR_NUMBER, "Body": "secret words", "MessageSid": "SMbad", "From": "not-a-number"}
    r = await stack.post("/webhooks/twilio/sms", form)
    assert r.status_code == 400
    assert "secret words" not in r.text and "not-a-number" not in r.text


async def test_mms_only_texts_are_handled(stack: Stack) -> None:
    extra = {"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/2010-04-01/Media/ME1",
             "MediaContentType0": "image/jpeg"}  # fmt: skip
    r = await stack.text(fan(), "", **extra)
    assert r.status_code == 200 and "<Message>" in r.text


async def test_replies_past_the_budget_go_out_through_the_sdk_and_callbacks_update_them(
    slow_stack: Stack,
) -> None:
    number = fan()
    slow_stack.twilio.hold_callbacks()  # as Twilio: the create's answer first, then callbacks
    r = await slow_stack.text(number, "hi")
    assert r.status_code == 200 and "<Message>" not in r.text  # answered at once, empty
    [sent] = await slow_stack.twilio.wait_accepted(1, to=number)
    assert "YES" in sent["body"]
    contact = await slow_stack.store.contact_by_phone(number)
    inbound_id = await _last_inbound_id(slow_stack, contact.id)

    async def recorded_as_sent() -> bool:
        return [r.status for r in await slow_stack.store.replies_to(inbound_id)] == ["sent"]

    await until(recorded_as_sent)  # the sender stored Twilio's answer (the message SID)
    slow_stack.twilio.release_callbacks()
    await slow_stack.twilio.flush_callbacks()  # queued -> sent -> delivered, signed, to our URL
    [reply] = await slow_stack.store.replies_to(inbound_id)
    assert reply.status == "delivered"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    """Wait (bounded) for a condition another task makes true."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def _last_inbound_id(stack: Stack, contact_id: int) -> int:
    import sqlalchemy as sa

    from bot.storage.tables import messages

    return await stack.store.db.run(
        lambda c: c.execute(
            sa.select(sa.func.max(messages.c.id)).where(
                messages.c.contact_id == contact_id, messages.c.direction == "in"
            )
        ).scalar_one()
    )


async def test_stop_cancels_everything_queued_for_the_fan(stack: Stack) -> None:
    from datetime import timedelta

    from bot.domain import TurnRecord
    from bot.messages import OutboundSms, utcnow

    number = fan()
    await stack.text(number, "hi")
    await stack.text(number, "YES")
    contact = await stack.store.contact_by_phone(number)
    ctx = await stack.store.load_turn(contact.id)
    # two texts scheduled for later (as a broadcast would be), through the production path
    later = [OutboundSms(number, f"news {i}", kind="broadcast") for i in range(2)]
    queued = await stack.store.finish_turn(
        TurnRecord(contact.id, ctx.conversation_id, await _last_inbound_id(stack, contact.id),
                   replies=later, hold_replies_until=utcnow() + timedelta(hours=1))
    )  # fmt: skip
    r = await stack.text(number, "STOP")
    assert "unsubscribed" in r.text.lower()
    await stack.store.release_held([q.outbox_id for q in queued])  # due now
    await stack.app.ctx.sender.drain()
    assert [await stack.store.message_status(q.outbox_id) for q in queued] == ["cancelled"] * 2
    assert not any("news" in m["body"] for m in stack.twilio.accepted(to=number))
    assert (await stack.store.contact_by_phone(number)).subscription == "unsubscribed"


async def test_health_readiness_and_metrics(stack: Stack) -> None:
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    await stack.text(fan(), "hi")
    metrics = (await stack.http.get("/metrics")).text
    assert "fanline_turns_total" in metrics and "fanline_turn_seconds_bucket" in metrics
