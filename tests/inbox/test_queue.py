"""The queue's rules on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.domain import ConsentChange
from bot.errors import BadRequest, Conflict
from bot.inbox import queue, threads
from bot.inbox.auth import now
from bot.storage import Database, Store
from bot.storage.tables import conversations, escalations, events, messages

from .conftest import US, Team, escalate, fan, fan_texts_again


async def test_an_escalation_waits_unassigned_with_its_reason_and_guesses(
    store: Store, team: Team
) -> None:
    cid = await escalate(
        store, fan(1), reason="low_confidence", guesses=(("tickets", 0.41), ("merch", 0.2))
    )
    page = await queue.list_queue(store.db, "unassigned", team.ana)
    [item] = page.items
    assert (item.conversation_id, item.reason, item.priority) == (cid, "low_confidence", "normal")
    assert item.guesses == (("tickets", 0.41), ("merch", 0.2))
    assert item.assignee_id is None and item.awaiting_reply is False  # the bot acknowledged
    assert item.waiting_s >= 0 and item.status == "waiting"
    assert page.counts == {"unassigned": 1, "mine": 0, "all": 1, "snoozed": 0, "missed": 0}


async def test_sorted_by_priority_then_longest_wait(store: Store, team: Team) -> None:
    old = await escalate(store, fan(1), priority="normal")
    urgent = await escalate(store, fan(2), priority="urgent")
    newer = await escalate(store, fan(3), priority="normal")
    low = await escalate(store, fan(4), priority="low")
    high = await escalate(store, fan(5), priority="high")
    page = await queue.list_queue(store.db, "all", team.ana)
    assert [i.conversation_id for i in page.items] == [urgent, high, old, newer, low]
    first_two = await queue.list_queue(store.db, "all", team.ana, limit=2, offset=1)
    assert [i.conversation_id for i in first_two.items] == [high, old]


async def test_claim_moves_a_thread_to_mine_and_a_second_claim_loses(
    store: Store, team: Team
) -> None:
    cid = await escalate(store, fan(1))
    await queue.claim(store.db, cid, team.ana)
    await queue.claim(store.db, cid, team.ana)  # claiming your own thread again is harmless
    with pytest.raises(Conflict, match="claimed this thread first"):
        await queue.claim(store.db, cid, team.ben)
    mine = await queue.list_queue(store.db, "mine", team.ana)
    assert [i.conversation_id for i in mine.items] == [cid]
    assert mine.items[0].assignee_name == "Ana"
    assert (await queue.list_queue(store.db, "unassigned", team.ben)).items == ()
    assert (await queue.list_queue(store.db, "mine", team.ben)).items == ()


async def test_a_thread_with_the_bot_cannot_be_claimed(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    await queue.resolve(store.db, cid, team.ana)
    with pytest.raises(Conflict, match="with the bot"):
        await queue.claim(store.db, cid, team.ben)


async def test_twenty_concurrent_claims_have_exactly_one_winner(
    store: Store, team: Team, database_url: str
) -> None:
    cid = await escalate(store, fan(1))
    claimers = [await team.auth.create_agent(f"agent{i}", "x" * 12) for i in range(20)]
    start = threading.Barrier(len(claimers))
    outcomes: dict[int, str] = {}

    def contend(agent: queue.Agent) -> None:
        db = Database(database_url)  # its own engine and connection, like another server process
        try:
            start.wait()
            asyncio.run(queue.claim(db, cid, agent))
            outcomes[agent.id] = "won"
        except Conflict:
            outcomes[agent.id] = "lost"
        finally:
            db.close()

    workers = [threading.Thread(target=contend, args=(a,)) for a in claimers]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    winners = [agent_id for agent_id, result in outcomes.items() if result == "won"]
    assert len(outcomes) == 20 and len(winners) == 1
    rows = await store.db.run(lambda c: c.execute(
        sa.select(conversations.c.assignee_id).where(conversations.c.id == cid)).scalar_one())  # fmt: skip
    claimed = await store.db.run(lambda c: c.execute(
        sa.select(sa.func.count()).where(events.c.type == "claimed")).scalar_one())  # fmt: skip
    assert rows == winners[0] and claimed == 1


async def test_reply_is_queued_in_the_outbox_and_starts_the_clock(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    sent = await queue.reply(store.db, cid, team.ana, "Hi! Ana here from the team 🎤")
    assert (sent.segments, sent.encoding) == (1, "UCS-2")
    [item] = (await queue.list_queue(store.db, "mine", team.ana)).items  # replying claimed it
    assert item.conversation_id == cid
    claimed = await store.claim_outbox(10)
    agent_rows = [o for o in claimed if o.kind == "agent"]
    assert [(o.to, o.sender, o.body) for o in agent_rows] == [
        (fan(1), US, "Hi! Ana here from the team 🎤")
    ]
    esc = await store.db.run(lambda c: c.execute(sa.select(escalations)).one())
    assert esc.first_response_at is not None and esc.resolved_at is None
    with pytest.raises(BadRequest):
        await queue.reply(store.db, cid, team.ana, "   ")


async def test_another_agents_thread_is_theirs_unless_you_are_admin(
    store: Store, team: Team
) -> None:
    cid = await escalate(store, fan(1))
    await queue.claim(store.db, cid, team.ana)
    with pytest.raises(Conflict, match="another agent"):
        await queue.reply(store.db, cid, team.ben, "me too")
    with pytest.raises(Conflict, match="another agent"):
        await queue.reassign(store.db, cid, team.ben, team.ben.id)
    await queue.reply(store.db, cid, team.admin, "An admin may step in.")
    await queue.reassign(store.db, cid, team.admin, team.ben.id)
    [item] = (await queue.list_queue(store.db, "mine", team.ben)).items
    assert item.conversation_id == cid


async def test_no_reply_reaches_a_fan_who_opted_out(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    contact = await store.contact_by_phone(fan(1))
    assert contact is not None
    await store.set_subscription(contact.id, ConsentChange("opt_out", "sms_keyword"))
    with pytest.raises(Conflict, match="opted out"):
        await queue.reply(store.db, cid, team.ana, "are you there?")
    queued = await store.db.run(lambda c: c.execute(
        sa.select(sa.func.count()).where(messages.c.kind == "agent")).scalar_one())  # fmt: skip
    assert queued == 0


async def test_notes_are_private_and_never_sent(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    await queue.add_note(store.db, cid, team.ben, "VIP: met her at the Denver show")
    assert all(o.kind != "note" for o in await store.claim_outbox(10))
    thread = await threads.load_thread(store.db, cid)
    [note] = [e for e in thread.timeline if e.kind == "note"]
    assert (note.body, note.agent_name) == ("VIP: met her at the Denver show", "Ben")


async def test_tags_live_on_the_fans_profile(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    assert await queue.set_tags(store.db, cid, team.ana, ["vip", "Denver", "vip"], []) == [
        "vip",
        "denver",
    ]
    assert await queue.set_tags(store.db, cid, team.ana, ["press"], ["vip"]) == ["denver", "press"]
    contact = await store.contact_by_phone(fan(1))
    assert contact is not None and contact.fan_fields()["tags"] == ["denver", "press"]
    with pytest.raises(BadRequest):
        await queue.set_tags(store.db, cid, team.ana, ["<script>"], [])


async def test_resolve_hands_the_fan_back_and_stops_the_clock(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    await queue.reply(store.db, cid, team.ana, "Sorted!")
    await queue.resolve(store.db, cid, team.ana)
    contact = await store.contact_by_phone(fan(1))
    assert contact is not None and await store.conversation_status(contact.id) == "resolved"
    assert (await queue.list_queue(store.db, "all", team.ana)).items == ()
    esc = await store.db.run(lambda c: c.execute(sa.select(escalations)).one())
    assert esc.resolved_at is not None and esc.assignee_id == team.ana.id
    timers = await threads.service_timers(store.db)
    assert (timers.resolved, timers.open, timers.waiting) == (1, 0, 0)
    assert timers.first_response_p50_s is not None and timers.resolution_p50_s is not None
    assert timers.resolution_p50_s >= timers.first_response_p50_s


async def test_snooze_sets_a_thread_aside_until_it_is_due(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    with pytest.raises(BadRequest):
        await queue.snooze(store.db, cid, team.ana, now() - timedelta(minutes=1))
    await queue.snooze(store.db, cid, team.ana, now() + timedelta(hours=1))
    assert (await queue.list_queue(store.db, "mine", team.ana)).items == ()
    [snoozed] = (await queue.list_queue(store.db, "snoozed", team.ana)).items
    assert snoozed.status == "snoozed"
    # time passes: the snooze ends and the thread is back in its owner's list
    await store.db.run(lambda c: c.execute(conversations.update().values(
        snoozed_until=now() - timedelta(seconds=1))))  # fmt: skip
    [back] = (await queue.list_queue(store.db, "mine", team.ana)).items
    assert back.status == "open" and back.conversation_id == cid


async def test_a_fan_texting_a_snoozed_thread_is_waiting_again(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    await queue.snooze(store.db, cid, team.ana, now() + timedelta(hours=4))
    await fan_texts_again(store, fan(1), "hello??")
    [item] = (await queue.list_queue(store.db, "mine", team.ana)).items
    assert item.status == "open" and item.awaiting_reply and item.preview == "hello??"


async def test_reassign_to_a_disabled_agent_is_refused(store: Store, team: Team) -> None:
    cid = await escalate(store, fan(1))
    await queue.claim(store.db, cid, team.ana)
    await team.auth.set_active("ben", False)
    with pytest.raises(BadRequest):
        await queue.reassign(store.db, cid, team.ana, team.ben.id)
    await queue.reassign(store.db, cid, team.ana, None)  # back to the queue
    [item] = (await queue.list_queue(store.db, "unassigned", team.ben)).items
    assert item.conversation_id == cid


async def test_the_thread_shows_every_turn_with_intents_and_markers(
    store: Store, team: Team
) -> None:
    cid = await escalate(store, fan(1), "my ticket never arrived", reason="complaint",
                         priority="high", guesses=(("complaint", 0.83),))  # fmt: skip
    await queue.reply(store.db, cid, team.ana, "So sorry! Checking now.")
    thread = await threads.load_thread(store.db, cid)
    kinds = [(e.kind, e.body) for e in thread.timeline if e.kind != "marker"]
    assert kinds == [("fan", "my ticket never arrived"), ("bot", "A real person will text you back."),
                     ("agent", "So sorry! Checking now.")]  # fmt: skip
    first = thread.timeline[0]
    assert (first.intent, first.confidence) == ("complaint", 0.83)
    markers = [e.body for e in thread.timeline if e.kind == "marker"]
    assert markers == ["escalated: complaint (high)", "claimed"]
    assert thread.escalation is not None and thread.escalation.reason == "complaint"
    assert thread.profile.phone_hint == "…0001" and thread.profile.subscription == "pending"
