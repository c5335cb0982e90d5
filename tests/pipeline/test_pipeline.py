"""The inbound path end to end on the demo fan line: real NLU model, real database, real actions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.messages import InboundSms
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.conftest import ROOT

US = "+15550100000"


def text(fan: str, body: str, *, sid: str | None = None, media: tuple[str, ...] = ()) -> InboundSms:
    return InboundSms(sid or f"SM{uuid.uuid4().hex}", fan, US, body, media_urls=media)


def fan() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


async def start(database_url: str, **env: str) -> Runtime:
    settings = load_settings(
        ROOT, env={"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test", **env}
    )
    return await Runtime.start(settings)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(database_url)
    try:
        yield rt
    finally:
        await rt.close()


def said(outcome) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [d.get("response") for t, d in outcome.events if t == "utter"]


async def subscribed_fan(runtime: Runtime) -> str:
    number = fan()
    await runtime.handle(text(number, "hi"))  # first contact: the opt-in question
    out = await runtime.handle(text(number, "YES"))
    assert "utter_opt_in_confirmed" in said(out)
    return number


async def test_first_text_starts_the_opt_in_and_yes_subscribes(runtime: Runtime) -> None:
    number = fan()
    first = await runtime.handle(text(number, "hello!"))
    assert "utter_ask_opt_in" in said(first)
    second = await runtime.handle(text(number, "yes"))
    assert "utter_opt_in_confirmed" in said(second)
    contact = await runtime.store.contact_by_phone(number)
    assert contact is not None and contact.subscription == "subscribed"


async def test_a_duplicate_delivery_yields_the_same_replies_and_no_new_turn(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    first = await runtime.handle(text(number, "TOUR", sid="SMdup1"))
    contact = await runtime.store.contact_by_phone(number)
    events_before = await runtime.store.events_for(contact.id)
    again = await runtime.handle(text(number, "TOUR", sid="SMdup1"))
    assert again.duplicate
    assert [q.reply.body for q in again.replies] == [q.reply.body for q in first.replies]
    assert await runtime.store.events_for(contact.id) == events_before


async def test_stop_confirms_once_then_silence_and_start_resubscribes(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    stop = await runtime.handle(text(number, "Stop!"))
    assert said(stop) == ["utter_opt_out_confirmed"]
    assert [q.reply.kind for q in stop.replies] == ["compliance"]
    assert (await runtime.handle(text(number, "STOP"))).replies == ()  # at most one confirmation
    assert (await runtime.handle(text(number, "when is the tour?"))).replies == ()
    back = await runtime.handle(text(number, "START"))
    assert said(back) == ["utter_resubscribed"]
    assert (await runtime.store.contact_by_phone(number)).subscription == "subscribed"


async def test_help_is_answered_even_while_a_human_holds_the_thread(runtime: Runtime) -> None:
    from bot.inbox import queue
    from bot.inbox.auth import Auth
    from bot.storage import inbox_store
    from tests.inbox.conftest import FAST_HASHER, PASSWORD

    number = await subscribed_fan(runtime)
    handoff = await runtime.handle(text(number, "can I talk to a real person please"))
    assert handoff.escalation is not None
    ana = await Auth(runtime.store.db, b"k", hasher=FAST_HASHER).create_agent("ana", PASSWORD)
    contact = await runtime.store.contact_by_phone(number)
    cid = await runtime.store.db.run(inbox_store.conversation_of_contact, contact.id)
    await queue.claim(runtime.store.db, cid, ana)  # a person is in the thread now
    held = await runtime.handle(text(number, "hello? when is the tour"))
    assert held.held and held.replies == ()
    help_ = await runtime.handle(text(number, "HELP"))
    assert said(help_) == ["utter_help"]
    stop = await runtime.handle(text(number, "STOP"))
    assert said(stop) == ["utter_opt_out_confirmed"]


async def test_every_decision_is_recorded_as_an_event(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, "BDAY"))
    await runtime.handle(text(number, "Maya"))
    await runtime.handle(text(number, "March 3 1999"))
    contact = await runtime.store.contact_by_phone(number)
    events = await runtime.store.events_for(contact.id)
    kinds = [k for k, _ in events]
    assert {"name": "birthday", "value": "1999-03-03"} in [d for k, d in events if k == "slot_set"]
    for expected in ("intent", "flow_started", "step", "slot_set", "utter"):
        assert expected in kinds


@pytest.mark.parametrize(
    "body,media",
    [
        ("", ("https://api.twilio.com/media/ME1",)),  # MMS only
        ("", ()),  # empty
        ("😍😍🔥", ()),  # emoji only
        ("¿Cuándo es el concierto en México?", ()),
        ("コンサートはいつですか", ()),
        ("love you " * 177 + "x", ()),  # 1,600 characters
    ],
)
async def test_odd_texts_get_a_defined_answer_and_are_stored(
    runtime: Runtime, body: str, media: tuple[str, ...]
) -> None:
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, body, media=media))
    assert out.replies or out.escalation is not None  # an answer, or a human is on it
    assert await runtime.store.message_status(out.message_id) == "processed"


async def test_a_burst_from_one_fan_is_answered_in_arrival_order(runtime: Runtime) -> None:
    import sqlalchemy as sa

    from bot.storage.tables import events

    number = await subscribed_fan(runtime)
    bodies = ["TOUR", "MERCH", "VIP", "thanks", "TOUR"]
    outcomes = await asyncio.gather(*(runtime.handle(text(number, b)) for b in bodies))
    ids = sorted(o.message_id for o in outcomes)
    # the order turns were decided in (event ids) is the order texts were recorded (message ids)
    decided = await runtime.store.db.run(
        lambda c: (
            c.execute(
                sa.select(events.c.message_id)
                .where(events.c.type == "intent", events.c.message_id.in_(ids))
                .order_by(events.c.id)
            )
            .scalars()
            .all()
        )
    )
    assert decided == ids
    assert all(o.replies for o in outcomes)


async def test_a_failing_custom_action_apologises_and_escalates(database_url: str) -> None:
    # an action server that is not there: the turn must still answer, honestly
    rt = await start(database_url, FANLINE_ACTION_ENDPOINT="http://127.0.0.1:9/webhook")
    try:
        number = await subscribed_fan(rt)
        out = await rt.handle(text(number, "any shows near 90210?"))
        assert "utter_internal_error" in said(out)
        assert out.escalation is not None and out.escalation["reason"] == "internal_error"
    finally:
        await rt.close()


async def test_two_processes_keep_one_fans_turns_in_order(database_url: str) -> None:
    """Texts recorded while the fan's turn is busy are answered in arrival order, whichever
    server process wins the lock (on PostgreSQL two runtimes with their own pools and locks)."""
    a = await start(database_url)
    b = await start(database_url) if a.locks._pg_dsn else a
    try:
        number = await subscribed_fan(a)
        await a.handle(text(number, "BDAY"))
        await a.handle(text(number, "Maya"))  # the flow asks the name first
        contact = await a.store.contact_by_phone(number)
        first, second = text(number, "March 3 1999"), text(number, "90210")
        async with a.locks.hold(number):  # a turn in progress: both texts queue up
            await a.store.record_inbound(first)
            await a.store.record_inbound(second)
            later = asyncio.gather(b.handle(second), a.handle(first))
        out_second, out_first = await later
        slots = [d["name"] for k, d in await a.store.events_for(contact.id) if k == "slot_set"]
        assert slots[-2:] == ["birthday", "zip"]
        assert out_first.replies and out_second.replies
    finally:
        await a.close()
        if b is not a:
            await b.close()


async def test_keywords_are_not_mistaken_for_entities(runtime: Runtime) -> None:
    parse = runtime.pipeline.brain.interpreter.parse
    for keyword in ("TOUR", "MERCH", "VIP"):
        assert parse(keyword).entities == ()
    assert [(e.entity, e.value) for e in parse("my zip is 90210").entities] == [("zip", "90210")]


async def test_a_reply_to_a_broadcast_is_linked_to_it(runtime: Runtime) -> None:
    from bot.messages import OutboundSms, utcnow
    from bot.storage.tables import messages

    number = await subscribed_fan(runtime)
    contact = await runtime.store.contact_by_phone(number)
    store = runtime.store
    await store.db.run(  # a broadcast text for this fan, as the broadcast enqueuer writes it
        lambda c: store._enqueue(
            c, contact.id, [OutboundSms(number, "Presale Tuesday!", kind="broadcast")],
            utcnow(), None, broadcast_id=42,
        )
    )  # fmt: skip
    out = await runtime.handle(text(number, "omg yes!!"))
    assert ("broadcast_reply", {"broadcast_id": 42}) in out.events
    linked = await store.db.run(
        lambda c: c.execute(
            messages.select().with_only_columns(messages.c.broadcast_id)
            .where(messages.c.id == out.message_id)
        ).scalar_one()
    )  # fmt: skip
    assert linked == 42
