"""A fan with questions in two topics: a reply to one topic answers only that question. The
other stays waiting in its topic (the escalation open, the thread waiting) until it is answered
too; each text shows its own parse, not the guesses of the text that opened the escalation."""

from __future__ import annotations

import asyncio
from collections import Counter

import sqlalchemy as sa

from bot.storage import Store
from bot.storage.tables import conversations, escalations, events, messages
from bot.topics import service

from .conftest import QUESTIONS, Team, escalate, fan, sweep_for

DENVER_GUESS = (("out_of_scope", 0.62),)
REFUND_GUESS = (("ask_refund", 0.99),)


async def two_questions(store: Store) -> tuple[int, int, int]:
    """Fan 0 asks about Denver, then (joining the same escalation) about a refund; five other
    fans ask each. (fan 0's conversation, the Denver topic, the refund topic)."""
    both = await escalate(store, fan(0), QUESTIONS["denver"][0], guesses=DENVER_GUESS)
    await escalate(store, fan(0), QUESTIONS["refund"][0], guesses=REFUND_GUESS)
    for n in range(1, 6):
        await escalate(store, fan(n), QUESTIONS["denver"][n], guesses=DENVER_GUESS)
        await escalate(store, fan(10 + n), QUESTIONS["refund"][n], guesses=REFUND_GUESS)
    await sweep_for(store).run_once()
    by_text: dict[str, int] = {}
    for t in await service.list_topics(store.db):
        for text in (await service.topic(store.db, t.id)).texts:
            by_text[text.body] = t.id
    denver, refund = by_text[QUESTIONS["denver"][0]], by_text[QUESTIONS["refund"][0]]
    assert denver != refund
    return both, denver, refund


def state(store: Store, conversation_id: int) -> tuple[str, bool, int]:
    """(conversation status, escalation resolved, agent texts to the fan)."""

    def q(conn):  # type: ignore[no-untyped-def]
        conv = conn.execute(
            sa.select(conversations).where(conversations.c.id == conversation_id)
        ).one()
        esc = conn.execute(
            sa.select(escalations).where(escalations.c.conversation_id == conversation_id)
        ).all()
        sent = conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.contact_id == conv.contact_id, messages.c.kind == "agent"
            )
        ).scalar_one()
        assert len(esc) == 1  # one escalation for both questions
        return conv.status, esc[0].resolved_at is not None, int(sent)

    return store.db.run_sync(q)


async def test_a_reply_to_one_topic_leaves_the_fans_other_question_waiting(
    store: Store, team: Team
) -> None:
    both, denver, refund = await two_questions(store)
    first = await service.reply_to_topic(store.db, team.ana, denver, "Denver is on!", quiet=None)
    assert first.fans == 6  # fan 0 is answered about Denver, once
    assert state(store, both) == ("waiting", False, 1)
    left = await service.topic(store.db, refund)
    assert left.summary.status == "open" and left.summary.fans == 6
    mine = [t for t in left.texts if t.body == QUESTIONS["refund"][0]]
    assert len(mine) == 1 and mine[0].done_at is None and mine[0].conversation_status == "waiting"
    await sweep_for(store).run_once()  # the sweep finds nothing of it answered either
    assert (await service.topic(store.db, refund)).summary.fans == 6
    assert (await service.topic(store.db, denver)).summary.status == "answered"

    second = await service.reply_to_topic(store.db, team.ana, refund, "Refunds: link", quiet=None)
    assert second.fans == 6
    assert state(store, both) == ("resolved", True, 2)  # both answered: back to the bot

    def resolved_flags(conn):  # type: ignore[no-untyped-def]
        rows = conn.execute(
            sa.select(events.c.data).where(events.c.type == "agent_replied")
        ).scalars()
        return Counter(
            (d["topic_id"], d["resolved"]) for d in rows if d["topic_id"] in (denver, refund)
        )

    # fan 0's first answer left the escalation open; every other one closed its fan's
    assert store.db.run_sync(resolved_flags) == {(denver, True): 5, (denver, False): 1,
                                                 (refund, True): 6}  # fmt: skip


async def test_replies_to_both_topics_at_once_text_the_fan_once_each_and_close_once(
    store: Store, team: Team
) -> None:
    both, denver, refund = await two_questions(store)
    results = await asyncio.gather(
        service.reply_to_topic(store.db, team.ana, denver, "Denver is on!", quiet=None),
        service.reply_to_topic(store.db, team.ben, refund, "Refunds: link", quiet=None),
        service.reply_to_topic(
            store.db, team.ana, denver, "Denver!!", request_key="d2", quiet=None
        ),
    )
    assert sum(r.fans for r in results) == 12
    assert state(store, both) == ("resolved", True, 2)
    for topic_id in (denver, refund):
        assert (await service.topic(store.db, topic_id)).summary.status == "answered"


async def test_each_text_shows_its_own_parse(store: Store, team: Team) -> None:
    _, denver, refund = await two_questions(store)
    detail = await service.topic(store.db, refund)
    joined = next(t for t in detail.texts if t.body == QUESTIONS["refund"][0])
    assert (joined.intent, joined.confidence) == ("ask_refund", 0.99)
    assert detail.summary.guesses == (("ask_refund", 0.99),)  # not fan 0's Denver guess
    assert (await service.topic(store.db, denver)).summary.guesses == (("out_of_scope", 0.62),)
    listed = {t.id: t for t in await service.list_topics(store.db)}
    assert listed[refund].guesses == (("ask_refund", 0.99),)


async def test_the_queue_shows_the_question_still_waiting(store: Store, team: Team) -> None:
    from bot.inbox import queue

    both, _, refund = await two_questions(store)
    await service.reply_to_topic(store.db, team.ana, refund, "Refunds: link", quiet=None)
    items = {
        i.conversation_id: i for i in (await queue.list_queue(store.db, "all", team.ana)).items
    }
    assert items[both].preview == QUESTIONS["denver"][0]  # not the refund question, answered
