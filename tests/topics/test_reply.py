"""Reply to a topic: one outbox row per fan under races and retries, waking hours, claimed
threads skipped, STOP after queueing wins at send time; moving, splitting, merging."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.domain import ConsentChange
from bot.errors import BadRequest, Conflict, NotFound
from bot.inbox import queue
from bot.outbound import OutboundSender
from bot.storage import Store
from bot.storage.tables import escalations, events, messages
from bot.topics import service
from tests.channels.conftest import LocalTwilio, twilio  # noqa: F401  (fixture)

from .conftest import Team, ask_all, sweep_for


def agent_rows(store: Store) -> list[dict]:
    def q(conn):
        return [dict(r._mapping) for r in conn.execute(
            sa.select(messages).where(messages.c.kind == "agent").order_by(messages.c.id))]  # fmt: skip

    return store.db.run_sync(q)


async def biggest(store: Store) -> service.TopicSummary:
    await sweep_for(store).run_once()
    return (await service.list_topics(store.db))[0]


async def test_a_reply_reaches_each_waiting_fan_once_and_hands_them_back(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    top = await biggest(store)
    result = await service.reply_to_topic(store.db, team.ana, top.id, "Hi {first_name|there}!",
                                          quiet=None)  # fmt: skip
    rows = agent_rows(store)
    assert result.fans == len(rows) == top.fans > 1
    assert {r["body"] for r in rows} == {"Hi there!"}
    assert all(r["agent_id"] == team.ana.id and r["status"] == "queued" for r in rows)
    assert all(r["segments"] == 1 and r["encoding"] == "GSM-7" for r in rows)
    detail = await service.topic(store.db, top.id)
    assert detail.summary.status == "answered"
    assert all(t.done_at is not None and t.conversation_status == "resolved" for t in detail.texts)
    assert detail.replies[0]["fans"] == result.fans

    # the escalations carry a first response and a resolution; the event names the reply
    def check(conn):
        esc = conn.execute(sa.select(escalations)).all()
        done = [e for e in esc if e.resolved_at is not None]
        assert len(done) == result.fans and all(e.first_response_at for e in done)
        replied = conn.execute(sa.select(events).where(events.c.type == "agent_replied")).all()
        assert {e.data["topic_reply_id"] for e in replied} == {result.reply_id}
        assert all(e.data["resolved"] for e in replied)

    store.db.run_sync(check)
    assert (await service.topic_counts(store.db))["waiting_texts"] == 24 - top.size


async def test_two_concurrent_replies_and_a_retried_key_text_each_fan_once(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    top = await biggest(store)
    first, second, retry = await asyncio.gather(
        service.reply_to_topic(store.db, team.ana, top.id, "Answer A", request_key="a", quiet=None),
        service.reply_to_topic(store.db, team.ben, top.id, "Answer B", request_key="b", quiet=None),
        service.reply_to_topic(store.db, team.ana, top.id, "Answer A", request_key="a", quiet=None),
    )
    rows = agent_rows(store)
    assert Counter(r["contact_id"] for r in rows) == {c: 1 for c in {r["contact_id"] for r in rows}}
    assert len(rows) == top.fans
    assert first.reply_id == retry.reply_id != second.reply_id
    assert first.fans + second.fans == top.fans
    again = await service.reply_to_topic(store.db, team.ana, top.id, "Answer A", request_key="a")
    assert (again.reply_id, again.fans, again.outbox_ids) == (first.reply_id, first.fans, ())
    with pytest.raises(Conflict):
        await service.reply_to_topic(store.db, team.ana, top.id + 1, "x", request_key="a")


async def test_outside_waking_hours_the_reply_waits_for_the_fans_morning(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    top = await biggest(store)
    night = datetime(2026, 8, 5, 7, 0, tzinfo=UTC)  # 03:00 in New York (the default zone)
    await service.reply_to_topic(store.db, team.ana, top.id, "Good morning", at=night)
    rows = agent_rows(store)
    assert {r["not_before"].replace(tzinfo=UTC) for r in rows} == {
        datetime(2026, 8, 5, 12, 0, tzinfo=UTC)
    }
    # a fan whose profile says Los Angeles hears at 08:00 there
    top2 = (await service.list_topics(store.db))[0]
    la = (await service.topic(store.db, top2.id)).texts[0].contact_id

    def move_to_la(conn):
        from bot.storage.tables import contacts

        conn.execute(
            contacts.update()
            .where(contacts.c.id == la)
            .values(profile={"timezone": "America/Los_Angeles", "first_name": "Sam"})
        )

    store.db.run_sync(move_to_la)
    await service.reply_to_topic(store.db, team.ana, top2.id, "Hi {first_name}", at=night)
    sam = [r for r in agent_rows(store) if r["contact_id"] == la][0]
    assert sam["body"] == "Hi Sam"
    assert sam["not_before"].replace(tzinfo=UTC) == datetime(2026, 8, 5, 15, 0, tzinfo=UTC)
    day = datetime(2026, 8, 5, 16, 0, tzinfo=UTC)
    top3 = (await service.list_topics(store.db))[0]
    await service.reply_to_topic(store.db, team.ana, top3.id, "Now", at=day)
    assert all(r["not_before"] is None for r in agent_rows(store) if r["body"] == "Now")


async def test_threads_another_agent_claimed_are_skipped_and_reported(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    top = await biggest(store)
    texts = (await service.topic(store.db, top.id)).texts
    theirs, mine = texts[0].conversation_id, texts[1].conversation_id
    await queue.claim(store.db, theirs, team.ben)
    await queue.claim(store.db, mine, team.ana)
    result = await service.reply_to_topic(store.db, team.ana, top.id, "Answer", quiet=None)
    assert [s["conversation_id"] for s in result.skipped] == [theirs]
    assert result.skipped[0]["reason"] == "claimed"
    assert result.fans == top.fans - 1
    assert texts[0].contact_id not in {r["contact_id"] for r in agent_rows(store)}
    detail = await service.topic(store.db, top.id)
    assert detail.summary.status == "open" and detail.summary.size == 1  # ben's fan still waits


async def test_a_stop_committed_after_the_reply_was_queued_wins_at_send_time(
    store: Store,
    team: Team,
    twilio: LocalTwilio,  # noqa: F811
) -> None:
    await ask_all(store)
    top = await biggest(store)
    result = await service.reply_to_topic(store.db, team.ana, top.id, "Answer", quiet=None)
    stopper = (await service.topic(store.db, top.id)).texts[0].contact_id
    await store.set_subscription(stopper, ConsentChange("opt_out", "sms_keyword"))
    gateway = twilio.gateway()
    try:
        await OutboundSender(store, gateway, rate_per_second=1000).drain()
    finally:
        await gateway.aclose()
    sent_to = Counter(m["to"] for m in twilio.server.accepted() if m["body"] == "Answer")
    assert len(sent_to) == result.fans - 1 and set(sent_to.values()) == {1}
    stopped = [r for r in agent_rows(store) if r["contact_id"] == stopper]
    assert [r["status"] for r in stopped] == ["cancelled"]
    # and a fan who had opted out before the reply gets no row at all
    await ask_all(store, start=100)
    top2 = await biggest(store)
    quiet_fan = (await service.topic(store.db, top2.id)).texts[0].contact_id
    await store.set_subscription(quiet_fan, ConsentChange("opt_out", "sms_keyword"))
    later = await service.reply_to_topic(store.db, team.ana, top2.id, "Later", quiet=None)
    assert {"contact_id": quiet_fan, "reason": "opted_out"}.items() <= next(
        s for s in later.skipped if s["contact_id"] == quiet_fan).items()  # fmt: skip


async def test_move_split_merge_and_rename(store: Store, team: Team) -> None:
    await ask_all(store)
    await sweep_for(store).run_once()
    topics = await service.list_topics(store.db)
    a, b = topics[0], topics[1]
    moved = (await service.topic(store.db, a.id)).texts[0]
    assert await service.move_texts(store.db, team.ana, [moved.message_id], b.id) == b.id
    assert moved.message_id in {t.message_id for t in (await service.topic(store.db, b.id)).texts}
    new = await service.move_texts(store.db, team.ana, [moved.message_id], None)
    assert new not in (a.id, b.id)
    assert [t.message_id for t in (await service.topic(store.db, new)).texts] == [moved.message_id]
    await service.merge(store.db, team.ana, new, b.id)
    merged = await service.topic(store.db, new)
    assert (merged.summary.status, merged.summary.merged_into) == ("merged", b.id)
    with pytest.raises(Conflict):
        await service.merge(store.db, team.ana, new, b.id)
    with pytest.raises(BadRequest):
        await service.merge(store.db, team.ana, b.id, b.id)
    await service.rename(store.db, team.ana, b.id, "  Denver   show ")
    await sweep_for(store).run_once()
    assert (await service.topic(store.db, b.id)).summary.label == "Denver show"
    with pytest.raises(NotFound):
        await service.topic(store.db, 9999)
    with pytest.raises(NotFound):
        await service.move_texts(store.db, team.ana, [424242], b.id)
    with pytest.raises(BadRequest):
        await service.reply_to_topic(store.db, team.ana, b.id, "a {broken")


async def test_regroup_keeps_what_agents_placed(store: Store, team: Team) -> None:
    await ask_all(store)
    sweep = sweep_for(store)
    await sweep.run_once()
    topics = await service.list_topics(store.db)
    placed = (await service.topic(store.db, topics[0].id)).texts[0]
    await service.move_texts(store.db, team.ana, [placed.message_id], topics[-1].id)
    result = await service.regroup(store.db, sweep)
    assert result.new == 23
    after = await service.topic(store.db, topics[-1].id)
    assert placed.message_id in {t.message_id for t in after.texts}
    counts = await service.topic_counts(store.db)
    assert counts["waiting_texts"] == 24 and counts["ungrouped"] == 0


async def test_a_storm_of_replies_on_one_big_topic_texts_each_fan_once(
    store: Store, team: Team
) -> None:
    """40 fans, one question; four replies race (two share a key), then the sweep runs too."""
    from .conftest import escalate, fan

    for n in range(40):
        await escalate(store, fan(n), f"is the denver show still on? #{n % 3}")
    sweep = sweep_for(store)
    await asyncio.gather(sweep.run_once(), sweep_for(store).run_once())  # two processes' sweeps
    assert (await service.topic_counts(store.db))["waiting_texts"] == 40
    top = (await service.list_topics(store.db))[0]
    assert top.fans == 40
    results = await asyncio.gather(*[
        service.reply_to_topic(store.db, agent, top.id, "Yes!", request_key=key, quiet=None)
        for agent, key in ((team.ana, "k1"), (team.ben, "k2"), (team.admin, None), (team.ana, "k1"))
    ])  # fmt: skip
    rows = agent_rows(store)
    assert len(rows) == 40 and len({r["contact_id"] for r in rows}) == 40
    assert sum(r.fans for r in results[:3]) == 40
    assert results[0].reply_id == results[3].reply_id


async def test_agents_claiming_threads_while_a_topic_reply_runs_never_deadlock(
    store: Store, team: Team
) -> None:
    """Claims lock escalation then conversation, as reply chunks do: on PostgreSQL the other
    order deadlocked. Every fan ends either answered by the reply or with the agent, once."""
    from .conftest import escalate, fan

    threads = [await escalate(store, fan(n), "is the denver show still on?") for n in range(30)]
    await sweep_for(store).run_once()
    top = (await service.list_topics(store.db))[0]
    assert top.fans == 30

    async def claim(conversation_id: int) -> str:
        try:
            await queue.claim(store.db, conversation_id, team.ben)
            return "claimed"
        except Conflict:
            return "answered"  # the reply resolved it first: back with the bot

    outcome = await asyncio.gather(
        service.reply_to_topic(store.db, team.ana, top.id, "Still on!", quiet=None),
        *[claim(c) for c in reversed(threads)],
    )
    reply, claims = outcome[0], outcome[1:]
    texted = {r["contact_id"] for r in agent_rows(store)}
    assert len(agent_rows(store)) == reply.fans == len(texted)  # one text per answered fan
    assert reply.fans + claims.count("claimed") >= 30 - len(reply.skipped)
    assert all(s["reason"] == "claimed" for s in reply.skipped)


async def test_a_claim_between_a_reply_chunks_two_locks_waits_instead_of_deadlocking(
    store: Store, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the reply has locked the escalations and not yet the conversations when an
    agent claims one of the threads. The claim must queue behind the reply (escalation first),
    not lock the conversation and wait for the escalation: that deadlock aborts one of them."""
    import threading
    import time

    from bot.storage import topic_store

    from .conftest import escalate, fan

    if store.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing can interleave")
    thread = await escalate(store, fan(0), "is the denver show still on?")
    await escalate(store, fan(1), "is denver still on tonight?")
    await sweep_for(store).run_once()
    top = (await service.list_topics(store.db))[0]
    escalations_locked = threading.Event()
    real = topic_store.lock_conversations

    def lock_conversations(conn, ids):  # type: ignore[no-untyped-def]
        escalations_locked.set()
        deadline = time.monotonic() + 10  # until the claim is blocked on a lock (bounded)
        while time.monotonic() < deadline and conn.execute(  # a fresh look each time
            sa.text("SELECT pg_stat_clear_snapshot()")
        ) and not conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar():  # fmt: skip
            time.sleep(0.005)
        return real(conn, ids)

    monkeypatch.setattr(topic_store, "lock_conversations", lock_conversations)
    reply = asyncio.create_task(
        service.reply_to_topic(store.db, team.ana, top.id, "Still on!", quiet=None)
    )
    assert await asyncio.to_thread(escalations_locked.wait, 10)
    with pytest.raises(Conflict):  # queued behind the reply, which handed the fan to the bot
        await queue.claim(store.db, thread, team.ben)
    result = await reply
    assert result.fans == 2 and len(agent_rows(store)) == 2


async def test_a_reply_that_fails_mid_way_is_finished_by_its_retry_texting_nobody_twice(
    store: Store, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process fails in its third chunk (the database refuses the outbox rows): the two
    committed chunks stay sent, the failed one rolled back whole; the client's retry with the
    same request_key answers the rest, and each fan has exactly one text."""
    from bot.storage import topic_store

    from .conftest import escalate, fan

    for n in range(25):
        await escalate(store, fan(n), "is the denver show still on?")
    await sweep_for(store).run_once()
    top = (await service.list_topics(store.db))[0]
    monkeypatch.setattr(service, "CHUNK", 10)
    real, calls = topic_store.insert_outbox, []

    def failing(conn, rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("injected: the process dies here")
        return real(conn, rows)

    monkeypatch.setattr(topic_store, "insert_outbox", failing)
    with pytest.raises(RuntimeError):
        await service.reply_to_topic(
            store.db, team.ana, top.id, "On!", request_key="r1", quiet=None
        )
    assert len(agent_rows(store)) == 20  # two chunks committed, the third rolled back
    assert (await service.topic(store.db, top.id)).summary.fans == 5  # still waiting
    retried = await service.reply_to_topic(store.db, team.ana, top.id, "On!", request_key="r1",
                                           quiet=None)  # fmt: skip
    rows = agent_rows(store)
    assert len(rows) == 25 and len({r["contact_id"] for r in rows}) == 25
    assert retried.fans == 25  # the reply's fans, both runs together
