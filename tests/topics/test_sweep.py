"""The topic sweep: new waiting texts join or make topics, answered ones are done, auto-replies
answer what joins until their time; the loop wakes on a hand-off. Real store, both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from bot.audience.quiet_hours import QuietHours
from bot.inbox import queue
from bot.storage import Store
from bot.storage.tables import messages
from bot.storage.topic_tables import topic_reply_fans
from bot.topics import service

from .conftest import QUESTIONS, Team, ask_all, escalate, fan, sweep_for

ANY_HOUR = QuietHours(time(0), time(0))


def auto_rows(store: Store) -> list[tuple[int, bool]]:
    return store.db.run_sync(
        lambda c: [
            tuple(r)
            for r in c.execute(
                sa.select(topic_reply_fans.c.contact_id, topic_reply_fans.c.auto).order_by(
                    topic_reply_fans.c.contact_id
                )
            )
        ]  # fmt: skip
    )


async def test_new_texts_make_topics_then_later_ones_join_them(store: Store) -> None:
    sweep = sweep_for(store)
    assert (await sweep.run_once()).new == 0
    first = {name: phrasings[:4] for name, phrasings in QUESTIONS.items()}
    n = 0
    for phrasings in first.values():
        for body in phrasings:
            await escalate(store, fan(n), body)
            n += 1
    assert (await service.topic_counts(store.db))["ungrouped"] == 16
    made = await sweep.run_once()
    assert (made.new, made.joined) == (16, 0) and made.created >= 4
    before = {t.id for t in await service.list_topics(store.db)}
    for phrasings in QUESTIONS.values():
        for body in phrasings[4:]:
            await escalate(store, fan(n), body)
            n += 1
    later = await sweep.run_once()
    # n-gram vectors (no encoder): most later phrasings join; the sentence encoder joins more
    assert later.new == 8 and later.joined >= 5 and later.created <= 3
    topics = await service.list_topics(store.db)
    assert before <= {t.id for t in topics}
    assert sum(t.size for t in topics) == 24
    assert all(t.label for t in topics)
    assert (await service.topic_counts(store.db)) == {
        "open_topics": len(topics), "waiting_texts": 24, "ungrouped": 0,
    }  # fmt: skip
    assert await sweep.run_once() == type(later)()  # nothing new: nothing changes


async def test_a_thread_resolved_in_the_inbox_marks_its_texts_done(
    store: Store, team: Team
) -> None:
    asked = await ask_all(store)
    sweep = sweep_for(store)
    await sweep.run_once()
    conversation_id = next(iter(asked))
    await queue.resolve(store.db, conversation_id, team.ana)
    result = await sweep.run_once()
    assert result.done == 1
    assert (await service.topic_counts(store.db))["waiting_texts"] == 23
    # a text the fan sends after that opens a new escalation: a new waiting text
    await escalate(store, fan(0), QUESTIONS["denver"][0])
    assert (await sweep.run_once()).new == 1


async def test_an_auto_reply_answers_new_texts_until_its_time_and_not_after(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    sweep = sweep_for(store, quiet=ANY_HOUR)
    await sweep.run_once()
    top = (await service.list_topics(store.db))[0]
    name = next(n for n, p in QUESTIONS.items() if top.examples[0] in p)
    result = await service.reply_to_topic(store.db, team.ana, top.id, "Yes, {first_name|friend}",
                                          auto_minutes=30, quiet=None)  # fmt: skip
    assert result.auto_until is not None
    assert (await service.topic(store.db, top.id)).summary.status == "open"  # listening
    await escalate(store, fan(500), QUESTIONS[name][0] + " please")
    answered = await sweep.run_once()
    assert answered.auto_answered == 1 and len(answered.outbox_ids) == 1
    assert auto_rows(store)[-1][1] is True
    # an auto-reply that ended before the text arrived answers nothing
    await service.set_auto_reply(store.db, team.ana, top.id, None)
    old = await service.reply_to_topic(store.db, team.ana, top.id, "x", auto_minutes=30,
                                       quiet=None, at=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
    assert old.auto_until < datetime.now(UTC)
    await escalate(store, fan(501), QUESTIONS[name][1] + " ??")
    late = await sweep.run_once()
    assert late.auto_answered == 0
    detail = await service.topic(store.db, top.id)
    waiting = [t for t in detail.texts if t.done_at is None]
    assert [t.body for t in waiting] == [QUESTIONS[name][1] + " ??"]


async def test_set_auto_reply_needs_a_reply_and_a_future_time(store: Store, team: Team) -> None:
    import pytest

    from bot.errors import BadRequest, Conflict

    await ask_all(store)
    await sweep_for(store).run_once()
    top = (await service.list_topics(store.db))[0]
    with pytest.raises(Conflict):
        await service.set_auto_reply(
            store.db, team.ana, top.id, datetime.now(UTC) + timedelta(hours=1)
        )
    with pytest.raises(BadRequest):
        await service.set_auto_reply(
            store.db, team.ana, top.id, datetime.now(UTC) - timedelta(hours=1)
        )


async def test_the_loop_wakes_on_notify_and_stops(store: Store) -> None:
    from bot.settings import TopicSettings

    sweep = sweep_for(store, settings=TopicSettings(every_s=3600, wake_gap_s=0))
    stop = asyncio.Event()
    task = asyncio.create_task(sweep.run(stop))
    await escalate(store, fan(1), "is the denver show still on")
    sweep.notify()

    async def grouped() -> None:
        while (await service.topic_counts(store.db))["waiting_texts"] == 0:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(grouped(), 10)  # long before the hour-long interval
    stop.set()
    await asyncio.wait_for(task, 10)
    assert (
        store.db.run_sync(
            lambda c: c.execute(sa.select(sa.func.count()).select_from(messages)).scalar()
        )
        >= 2
    )
