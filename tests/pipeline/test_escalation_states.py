"""Escalation is never a dead end: waiting vs a person in the thread, joining, after hours, missed.

The demo fan line end to end (real NLU model, real database, real inbox service functions).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.escalation import EscalationTimer
from bot.inbox import queue, threads
from bot.inbox.auth import Agent, Auth
from bot.messages import InboundSms, utcnow
from bot.runtime import Runtime
from bot.settings import TeamHours, load_settings
from bot.storage import escalation_store
from bot.storage.tables import escalations, messages
from tests.conftest import ROOT

US = "+15550100000"


def text(number: str, body: str) -> InboundSms:
    return InboundSms(f"SM{uuid.uuid4().hex}", number, US, body)


def said(outcome) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [d.get("response") for t, d in outcome.events if t == "utter"]


def offline_now() -> TeamHours:
    """Team hours that are not now: one hour, six hours from now (any day)."""
    opens = (utcnow().hour + 6) % 24
    return TeamHours("UTC", tuple(range(7)), f"{opens:02d}:00", f"{(opens + 1) % 24:02d}:00")


async def start(database_url: str, team_hours: TeamHours | None = None) -> Runtime:
    settings = load_settings(
        ROOT, env={"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    )
    settings = dataclasses.replace(settings, team_hours=team_hours)  # None: always at work
    return await Runtime.start(settings)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(database_url)
    try:
        yield rt
    finally:
        await rt.close()


async def subscribed_fan(runtime: Runtime) -> str:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    await runtime.handle(text(number, "hi"))
    await runtime.handle(text(number, "YES"))
    return number


async def agent(runtime: Runtime) -> Agent:
    from tests.inbox.conftest import FAST_HASHER, PASSWORD

    auth = Auth(runtime.store.db, b"k", hasher=FAST_HASHER)
    return await auth.create_agent(f"a{uuid.uuid4().hex[:8]}", PASSWORD, display_name="Ana")


async def open_escalations(runtime: Runtime, contact_id: int) -> list[dict]:  # type: ignore[type-arg]
    def rows(conn):  # type: ignore[no-untyped-def]
        q = escalations.select().where(escalations.c.contact_id == contact_id)
        return [dict(r._mapping) for r in conn.execute(q.order_by(escalations.c.id))]

    return await runtime.store.db.run(rows)


async def test_while_waiting_the_bot_answers_and_hand_offs_join_the_same_escalation(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    first = await runtime.handle(text(number, "is nova dating anyone"))
    assert first.escalation is not None and said(first) == ["utter_personal_question"]
    contact = await runtime.store.contact_by_phone(number)
    assert await runtime.store.conversation_status(contact.id) == "waiting"

    faq = await runtime.handle(text(number, "anyway when is the presale?"))
    assert not faq.held and faq.escalation is None and "utter_presale" in said(faq)
    keyword = await runtime.handle(text(number, "TOUR"))
    assert keyword.replies and keyword.escalation is None

    again = await runtime.handle(
        text(number, "the staff were so rude to me at the show, worst experience ever")
    )
    assert again.escalation == {"reason": "complaint", "priority": "high", "joined": True}
    assert said(again) == ["utter_escalation_joined"]  # not a second full acknowledgement
    [esc] = await open_escalations(runtime, contact.id)  # no second ticket
    assert esc["priority"] == "high" and esc["reason"] == "personal"  # it rose; it began personal
    texts = await runtime.store.db.run(escalation_store.escalation_texts, esc["id"])
    assert [t["id"] for t in texts] == [first.message_id, again.message_id]
    assert await runtime.store.conversation_status(contact.id) == "waiting"


async def test_once_claimed_the_bot_is_quiet_and_unassigning_brings_it_back(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, "can I talk to a real person please"))
    contact = await runtime.store.contact_by_phone(number)
    cid = await runtime.store.db.run(
        lambda c: c.execute(
            escalations.select()
            .with_only_columns(escalations.c.conversation_id)
            .where(escalations.c.contact_id == contact.id)
        ).scalar_one()
    )
    ana = await agent(runtime)
    await queue.claim(runtime.store.db, cid, ana)
    assert await runtime.store.conversation_status(contact.id) == "open"
    held = await runtime.handle(text(number, "hello? when is the presale"))
    assert held.held and held.replies == ()
    assert said(await runtime.handle(text(number, "HELP"))) == ["utter_help"]
    thread = await threads.load_thread(runtime.store.db, cid)
    assert held.message_id in thread.escalation.message_ids  # the agent reads it with the rest

    await queue.reassign(runtime.store.db, cid, ana, None)  # back in the queue
    assert await runtime.store.conversation_status(contact.id) == "waiting"
    answered = await runtime.handle(text(number, "when is the presale?"))
    assert "utter_presale" in said(answered)


async def test_after_hours_one_acknowledgement_saying_when_the_team_is_back(
    database_url: str,
) -> None:
    rt = await start(database_url, offline_now())
    try:
        number = await subscribed_fan(rt)
        complaint = await rt.handle(
            text(number, "the staff were so rude to me at the show, worst experience ever")
        )
        assert said(complaint) == ["utter_complaint_after_hours"]
        [reply] = [q.reply.body for q in complaint.replies]
        assert "soon" not in reply and " UTC" in reply  # when, in the team's own zone
        other = await subscribed_fan(rt)
        handoff = await rt.handle(text(other, "can i talk to a real person"))
        assert said(handoff) == ["utter_after_hours"]
    finally:
        await rt.close()


async def test_nobody_answers_in_time_one_follow_up_and_back_to_the_bot(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    first = await runtime.handle(text(number, "is nova dating anyone"))
    contact = await runtime.store.contact_by_phone(number)
    [esc] = await open_escalations(runtime, contact.id)
    assert esc["due_at"] is not None  # normal: 8 team hours (always at work here)
    timer = EscalationTimer(runtime.store, lambda: runtime.pipeline.brain.responses)

    assert await timer.sweep(utcnow() + timedelta(hours=7)) == []
    [missed] = await timer.sweep(utcnow() + timedelta(hours=9))
    assert missed.told and missed.contact_id == contact.id
    assert await timer.sweep(utcnow() + timedelta(hours=30)) == []  # one follow-up, ever
    assert await runtime.store.conversation_status(contact.id) == "missed"
    outbox = await runtime.store.db.run(
        lambda c: c.execute(
            messages.select().where(
                messages.c.contact_id == contact.id, messages.c.reply_to == first.message_id,
                messages.c.body.like("%couldn't get to your message%"),
            )
        ).all()
    )  # fmt: skip
    assert len(outbox) == 1 and outbox[0].status == "queued"

    back = await runtime.handle(text(number, "when is the presale?"))  # the bot answers again
    assert "utter_presale" in said(back) and not back.held
    page = await queue.list_queue(runtime.store.db, "missed", await agent(runtime))
    assert [i.status for i in page.items] == ["missed"]  # still visible to the team

    again = await runtime.handle(text(number, "whats the weather tomorrow"))  # asks again
    assert "utter_escalation_joined" not in said(again)  # a fresh promise, said in full
    [reopened] = await open_escalations(runtime, contact.id)  # the same ticket, waiting again
    assert reopened["id"] == esc["id"] and reopened["missed_at"] is None
    assert await runtime.store.conversation_status(contact.id) == "waiting"
