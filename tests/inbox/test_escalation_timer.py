"""The escalation timer: due times in team hours, and the sweep that marks missed escalations
(an injected clock, no sleeps; two sweeps at once have one winner per escalation)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.domain import ConsentChange
from bot.errors import ConfigError
from bot.escalation import EscalationPolicy, EscalationTimer, TeamClock
from bot.flows.model import Domain
from bot.flows.responses import Responses
from bot.inbox import queue
from bot.messages import utcnow
from bot.settings import TeamHours, load_settings
from bot.storage import Store
from bot.storage.tables import events, messages
from tests.inbox.conftest import Server, Team, escalate, fan, logged_in

NY = TeamHours("America/New_York", (0, 1, 2, 3, 4), "09:00", "18:00")
TUESDAY_5PM = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 17:00 in New York
FRIDAY_5PM = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def responses() -> Responses:
    return Responses(
        Domain.model_validate({"responses": {"utter_escalation_missed": [
            {"text": "Sorry, the team couldn't get to your message yet."}]}})
    )  # fmt: skip


def test_time_outside_team_hours_does_not_count() -> None:
    clock = TeamClock(NY)
    assert clock.add(TUESDAY_5PM, 0.5) == TUESDAY_5PM + timedelta(minutes=30)
    # one hour left on Tuesday, the other seven from Wednesday 9am
    assert clock.add(TUESDAY_5PM, 8) == datetime(2026, 12, 2, 21, 0, tzinfo=UTC)
    assert clock.add(FRIDAY_5PM, 2) == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10am
    assert clock.is_open(TUESDAY_5PM) and not clock.is_open(FRIDAY_5PM + timedelta(hours=2))


def test_when_the_team_is_back_in_words() -> None:
    clock = TeamClock(NY)
    assert clock.back_text(TUESDAY_5PM) == "now"
    assert clock.back_text(TUESDAY_5PM + timedelta(hours=2)) == "tomorrow at 9am EST"
    assert clock.back_text(FRIDAY_5PM + timedelta(hours=2)) == "Monday at 9am EST"
    assert clock.back_text(datetime(2026, 12, 2, 12, 0, tzinfo=UTC)) == "today at 9am EST"


def test_due_times_per_priority() -> None:
    policy = EscalationPolicy(TeamClock(NY), {"urgent": 1, "normal": 8, "low": None})
    assert policy.due_at("urgent", TUESDAY_5PM) == TUESDAY_5PM + timedelta(hours=1)
    assert policy.due_at("low", TUESDAY_5PM) is None  # never missed
    assert policy.due_at("high", TUESDAY_5PM) == policy.due_at("normal", TUESDAY_5PM)


def test_timeouts_are_validated_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "fanline:\n  escalation_timeouts:\n    urgent: 1\n    normal: soon\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
    assert "config.yml:4" in str(err.value) and "escalation_timeouts.normal" in str(err.value)
    (tmp_path / "config.yml").write_text("fanline:\n  escalation_timeouts:\n    sometime: 1\n")
    with pytest.raises(ConfigError, match="unknown priority"):
        load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
    (tmp_path / "config.yml").write_text(
        "fanline:\n  escalation_timeouts:\n    urgent: 0.5\n    low: never\n"
    )
    settings = load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
    assert settings.escalation_timeouts == {"urgent": 0.5, "low": None}


async def test_only_due_unclaimed_unanswered_escalations_are_missed(
    store: Store, team: Team
) -> None:
    now = utcnow()
    due = await escalate(store, fan(1), due_at=now + timedelta(hours=1))
    later = await escalate(store, fan(2), due_at=now + timedelta(hours=5))
    claimed = await escalate(store, fan(3), due_at=now + timedelta(hours=1))
    answered = await escalate(store, fan(4), due_at=now + timedelta(hours=1))
    never = await escalate(store, fan(5), due_at=None)
    opted_out = await escalate(store, fan(6), due_at=now + timedelta(hours=1))
    await queue.claim(store.db, claimed, team.ana)
    await queue.reply(store.db, answered, team.ben, "On it!")
    await queue.reassign(store.db, answered, team.ben, None)  # answered, then unassigned
    fan6 = await store.contact_by_phone(fan(6))
    await store.set_subscription(fan6.id, ConsentChange("opt_out", "sms_keyword"))
    timer = EscalationTimer(store, responses)

    assert await timer.sweep(now) == []
    missed = await timer.sweep(now + timedelta(hours=2))
    assert {(m.conversation_id, m.told) for m in missed} == {(due, True), (opted_out, False)}
    page = await queue.list_queue(store.db, "missed", team.ana)
    assert {i.conversation_id for i in page.items} == {due}  # nobody can text the opted out
    assert all(i.missed_at is not None for i in page.items)
    every = {
        i.conversation_id: i for i in (await queue.list_queue(store.db, "all", team.ana)).items
    }
    assert every[opted_out].missed_at is not None and every[opted_out].opted_out
    unassigned = await queue.list_queue(store.db, "unassigned", team.ana)
    assert due not in {i.conversation_id for i in unassigned.items}
    assert {i.conversation_id for i in unassigned.items} >= {later, never}
    # a missed thread can still be answered: claiming it takes it from the bot again
    await queue.claim(store.db, due, team.ana)
    fan1 = await store.contact_by_phone(fan(1))
    assert await store.conversation_status(fan1.id) == "open"


async def test_the_follow_up_goes_through_the_outbox_to_the_number_the_fan_texted(
    store: Store, team: Team
) -> None:
    now = utcnow()
    cid = await escalate(store, fan(7), due_at=now)
    contact = await store.contact_by_phone(fan(7))
    [missed] = await EscalationTimer(store, responses).sweep(now)
    assert missed.conversation_id == cid
    rows = await store.db.run(
        lambda c: c.execute(
            messages.select().where(
                messages.c.contact_id == contact.id, messages.c.direction == "out",
                messages.c.body.like("Sorry%"),
            )
        ).all()
    )  # fmt: skip
    [row] = rows
    assert (row.status, row.to_number, row.from_number) == ("queued", fan(7), "+15005550006")
    assert row.body == "Sorry, the team couldn't get to your message yet."


async def test_two_sweeps_at_once_tell_each_fan_exactly_once(store: Store, team: Team) -> None:
    """Two timers with their own database connections (two server processes): each due
    escalation is claimed by exactly one of them, and each fan gets one follow-up."""
    now = utcnow()
    for n in range(40):
        await escalate(store, fan(100 + n), due_at=now - timedelta(minutes=n))
    other = Store.open(store.db.url, hash_key=b"test-key", migrate=False)
    try:
        a = EscalationTimer(store, responses, batch=3)
        b = EscalationTimer(other, responses, batch=3)
        won_a, won_b = await asyncio.gather(a.sweep(now), b.sweep(now))
    finally:
        other.close()
    ids = [m.escalation_id for m in won_a + won_b]
    assert len(ids) == 40 and len(set(ids)) == 40
    counts = await store.db.run(
        lambda c: (
            c.execute(
                messages.select()
                .with_only_columns(messages.c.id)
                .where(messages.c.body.like("Sorry%"))
            ).all(),
            c.execute(events.select().where(events.c.type == "escalation_missed")).all(),
        )
    )
    assert len(counts[0]) == 40 and len(counts[1]) == 40


async def test_the_api_lists_missed_threads_with_their_badge(
    store: Store, team: Team, server: Server
) -> None:
    now = utcnow()
    cid = await escalate(store, fan(200), due_at=now)
    await EscalationTimer(store, responses).sweep(utcnow())
    async with logged_in(server.url, "ana") as (client, _csrf):
        listed = (await client.get("/api/v1/queue", params={"view": "missed"})).json()
        assert listed["counts"]["missed"] == 1 and listed["counts"]["unassigned"] == 0
        [item] = listed["items"]
        assert (item["conversation_id"], item["status"]) == (cid, "missed")
        assert item["missed_at"] is not None
        thread = (await client.get(f"/api/v1/conversations/{cid}")).json()
        assert thread["status"] == "missed" and thread["escalation"]["missed_at"]
        assert any("missed" in e["body"] for e in thread["timeline"] if e["kind"] == "marker")
        page = await client.get("/inbox", params={"view": "missed"})
        assert 'class="badge missed"' in page.text


async def test_claims_and_new_texts_racing_the_sweep_leave_every_thread_consistent(
    store: Store, team: Team
) -> None:
    """The sweep (another process) races agents claiming half the threads and fans texting
    the other half again (joining their escalation). No deadlock; afterwards every thread's
    status agrees with its escalation, and follow-ups match the escalations marked missed."""
    now = utcnow()
    cids = [await escalate(store, fan(300 + n), due_at=now) for n in range(16)]
    other = Store.open(store.db.url, hash_key=b"test-key", migrate=False)

    async def claims() -> None:
        for cid in cids[::2]:
            await queue.claim(store.db, cid, team.ana)

    async def texts() -> None:
        for n in range(1, 16, 2):
            await escalate(store, fan(300 + n), "hello?? anyone", due_at=now + timedelta(hours=1))

    try:
        timer = EscalationTimer(other, responses, batch=1)
        missed, _, _ = await asyncio.gather(timer.sweep(utcnow()), claims(), texts())
    finally:
        other.close()

    def state(conn):  # type: ignore[no-untyped-def]
        from bot.storage.tables import conversations, escalations

        return conn.execute(
            sa.select(conversations.c.id, conversations.c.status, conversations.c.assignee_id,
                      escalations.c.missed_at)
            .join(escalations, escalations.c.conversation_id == conversations.c.id)
            .where(escalations.c.resolved_at.is_(None))
        ).all()  # fmt: skip

    rows = await store.db.run(state)
    assert sorted(r.id for r in rows) == sorted(cids)  # still one escalation per thread
    for r in rows:
        assert (r.status == "open") == (r.assignee_id is not None), r
        assert r.status != "missed" or r.missed_at is not None, r
        assert r.status != "waiting" or r.missed_at is None, r
    sent = await store.db.run(
        lambda c: c.execute(messages.select().where(messages.c.body.like("Sorry%"))).all()
    )
    assert len(sent) == len(missed) == len({m.escalation_id for m in missed})
