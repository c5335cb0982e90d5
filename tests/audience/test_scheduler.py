"""The timed-flow scheduler on a real database with the demo's content and model: due jobs
found once, run once (also with two schedulers at once), only for subscribed fans, held in
the fan's quiet hours, taken again after a runner's lease lapsed, birthdays in local time."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from bot.audience.scheduler import LEASE, TimedFlows
from bot.domain import ConsentChange, TurnRecord
from bot.messages import OutboundSms
from bot.runtime import Runtime
from bot.storage import Store, inbox_store
from bot.storage import flow_job_store as jobs
from bot.storage.engagement_tables import flow_jobs, links
from bot.storage.tables import messages
from tests.audience.fans import (
    close_pipeline,
    insert_fans,
    job_of,
    number,
    timed_pipeline,
    timed_texts,
)
from tests.pipeline.test_pipeline import start, subscribed_fan

WELCOME_1 = "Welcome to the Vale Crew!"


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(database_url)  # the whole line, NLU model included: a fan opts in by text
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def line(store: Store) -> AsyncIterator[SimpleNamespace]:
    """The demo's content on a store, without the NLU model (quick): `.store`, `.pipeline`."""
    pipeline = timed_pipeline(store)
    try:
        yield SimpleNamespace(store=store, pipeline=pipeline)
    finally:
        await close_pipeline(pipeline)


async def fans(runtime: Any, count: int, **kwargs: object) -> list[int]:
    store = runtime.store
    phones = [number(i) for i in range(count)]
    return await store.db.run(lambda c: insert_fans(c, store.phone_hash, phones, **kwargs))


async def texts(runtime: Any, contact_id: int | None = None) -> list[Any]:
    return await runtime.store.db.run(timed_texts, contact_id)


async def job_rows(runtime: Any) -> list[Any]:
    return await runtime.store.db.run(
        lambda c: c.execute(sa.select(flow_jobs).order_by(flow_jobs.c.id)).all()
    )


async def test_welcome_series_once_then_after_each_wait(runtime: Runtime) -> None:
    number_ = await subscribed_fan(runtime)
    contact = await runtime.store.contact_by_phone(number_)
    assert contact is not None
    timed, now = TimedFlows(runtime.pipeline), datetime.now(UTC)
    await timed.run_pass(now + timedelta(seconds=1))
    await timed.run_pass(now + timedelta(seconds=2))  # found and run again: nothing more
    rows = await texts(runtime, contact.id)
    assert [r.body.startswith(WELCOME_1) for r in rows] == [True]
    assert await timed.run_pass(now + timedelta(hours=23)) == []
    await timed.run_pass(now + timedelta(days=1, minutes=1))
    await timed.run_pass(now + timedelta(days=3, minutes=2))
    await timed.run_pass(now + timedelta(days=9))
    rows = await texts(runtime, contact.id)
    assert len(rows) == 3 and "Glad you're here" in rows[-1].body
    done = [(r.trigger, r.status) for r in await job_rows(runtime) if r.flow == "welcome_series"]
    assert done == [("after_signup", "done"), ("wait", "done"), ("wait", "done")]


async def test_stop_before_the_job_skips_it_and_after_it_cancels_the_text(
    line: SimpleNamespace,
) -> None:
    early, late = await fans(line, 2, profiles=[{"timezone": _zone_at_local_hour(12)}] * 2)
    stop = ConsentChange("opt_out", "sms_keyword")
    await line.store.set_subscription(early, stop)
    await TimedFlows(line.pipeline).run_pass(datetime.now(UTC) + timedelta(seconds=1))
    skipped = [(r.contact_id, r.reason) for r in await job_rows(line) if r.status == "skipped"]
    assert skipped == [(early, "unsubscribed")]
    assert [r.contact_id for r in await texts(line)] == [late]
    await line.store.set_subscription(late, stop)  # after its text was queued: checked at the send
    assert [i.kind for i in await line.store.claim_outbox(50)] == []
    assert [r.status for r in await texts(line)] == ["cancelled"]


async def test_a_timed_text_waits_for_the_fans_morning(line: SimpleNamespace) -> None:
    (cid,) = await fans(line, 1, profiles=[{"timezone": _zone_at_local_hour(3)}])
    await TimedFlows(line.pipeline).run_pass(datetime.now(UTC) + timedelta(seconds=1))
    assert [i.kind for i in await line.store.claim_outbox(50)] == []  # 3am there: held
    (row,) = await texts(line, cid)
    assert row.status == "queued" and row.not_before is not None
    held_for = jobs._aware(row.not_before) - datetime.now(UTC)
    assert timedelta(hours=4) < held_for < timedelta(hours=6)  # 08:00 local, ~5 h away


async def test_two_schedulers_at_once_send_each_text_once(
    line: SimpleNamespace, database_url: str
) -> None:
    ids = await fans(line, 12)
    other = Store.open(database_url, hash_key=b"test-key")  # its own connections and locks
    second = timed_pipeline(other)
    try:
        at = datetime.now(UTC) + timedelta(seconds=1)
        for _ in range(3):
            await asyncio.gather(
                TimedFlows(line.pipeline).run_pass(at), TimedFlows(second).run_pass(at)
            )
        rows = await texts(line)
        assert sorted(r.contact_id for r in rows) == sorted(ids)  # each fan once
    finally:
        await close_pipeline(second)
        other.close()


async def test_a_job_whose_runner_died_is_run_again_and_the_stale_runner_writes_nothing(
    line: SimpleNamespace,
) -> None:
    (cid,) = await fans(line, 1)
    timed, at = TimedFlows(line.pipeline), datetime.now(UTC) + timedelta(seconds=1)
    db = line.store.db
    await timed.find(at)
    (dead,) = await db.run(jobs.claim, at, LEASE, 10, None)  # claimed, then the process died
    assert await timed.run_pass(at + timedelta(seconds=30)) == []  # its lease still holds
    (outcome,) = await timed.run_pass(at + LEASE + timedelta(seconds=1))  # lapsed: taken again
    assert outcome.contact_id == cid
    ctx = await line.store.load_turn(cid)
    stale = await line.pipeline.timed_turn(ctx, dead.flow, after_step=None, seed=dead.id)
    assert await db.run(jobs.finish, dead, stale, at) is None  # the old attempt: refused
    assert len(await texts(line, cid)) == 1
    (row,) = [r for r in await job_rows(line) if r.id == dead.id]
    assert (row.status, row.attempts) == ("done", 2)
    assert job_of(row).attempts == 2


async def test_birthdays_at_nine_local_once_a_year(line: SimpleNamespace) -> None:
    chicago, auckland, other_day = await fans(
        line, 3,
        profiles=[
            {"birthday": "2001-05-10", "timezone": "America/Chicago", "first_name": "Ana"},
            {"birthday": "1999-05-11", "timezone": "Pacific/Auckland"},  # a UTC day ahead
            {"birthday": "1999-05-12", "timezone": "America/Chicago"},
        ],
        signed_up=[datetime(2020, 1, 1, tzinfo=UTC)] * 3,  # long ago: no welcome series now
    )  # fmt: skip
    timed = TimedFlows(line.pipeline)
    dawn = datetime(2027, 5, 10, 5, 0, tzinfo=UTC)
    assert await timed.run_pass(dawn) == []  # found, none due yet
    due = {r.contact_id: jobs._aware(r.due_at) for r in await job_rows(line)}
    assert due[chicago] == datetime(2027, 5, 10, 14, 0, tzinfo=UTC)  # 09:00 CDT
    assert due[auckland] == datetime(2027, 5, 10, 21, 0, tzinfo=UTC)  # 09:00 NZST, May 11
    assert other_day not in due
    ran = await timed.run_pass(datetime(2027, 5, 10, 14, 1, tzinfo=UTC))
    assert [o.contact_id for o in ran] == [chicago]
    assert "Happy birthday, Ana!" in (await texts(line, chicago))[0].body
    await timed.run_pass(datetime(2027, 5, 10, 22, 0, tzinfo=UTC))
    await timed.run_pass(datetime(2027, 5, 11, 15, 0, tzinfo=UTC))  # a new day: a new scan
    assert [len(await texts(line, c)) for c in (chicago, auckland)] == [1, 1]
    occurrences = {r.occurrence for r in await job_rows(line) if r.trigger == "on_birthday"}
    assert occurrences == {"2027"}


def test_month_days_keep_feb_29_on_the_28th() -> None:
    assert jobs.month_days(datetime(2027, 2, 28).date()) == ["02-27", "02-28", "03-01", "02-29"]


def _zone_at_local_hour(hour: int) -> str:
    """An Etc/GMT zone where it is about `hour` o'clock now."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. 11
    return f"Etc/GMT{-offset:+d}"  # Etc/GMT+5 is UTC-5


PROCESS = Path(__file__).with_name("scheduler_process.py")
CRASH_FANS = 150


async def test_a_scheduler_killed_mid_pass_resumes_without_second_texts(
    line: SimpleNamespace, database_url: str
) -> None:
    ids = await fans(line, CRASH_FANS)
    at = datetime.now(UTC) + timedelta(seconds=1)
    first = await asyncio.create_subprocess_exec(
        sys.executable, str(PROCESS), database_url, at.isoformat(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    for _ in range(6000):  # bounded (~2 min): until a few jobs are done
        if len(await texts(line)) >= CRASH_FANS // 5:
            break
        assert first.returncode is None, (await first.stderr.read()).decode()[-3000:]  # type: ignore[union-attr]
        await asyncio.sleep(0.02)  # polling a condition, not timing the test
    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed_at = len(await texts(line))
    assert 0 < killed_at < CRASH_FANS, "the kill must land mid-pass"
    # the dead process's `running` jobs are taken again once their lease lapses
    await TimedFlows(line.pipeline).run_pass(at + LEASE + timedelta(seconds=1))
    per_fan = Counter(r.contact_id for r in await texts(line))
    assert set(per_fan) == set(ids) and max(per_fan.values()) == 1
    firsts = [r.status for r in await job_rows(line) if r.trigger == "after_signup"]
    assert firsts == ["done"] * CRASH_FANS  # (the series' next texts wait a day)


async def test_a_timed_texts_links_are_the_fans_own_short_links(store: Store) -> None:
    """With `fanline.links.track_responses`, a timed flow's URL goes out as a short link of
    this fan's, tied to the text that carries it (clicks then feed `on_click` and reports)."""
    [contact_id] = await store.db.run(lambda c: insert_fans(c, store.phone_hash, [number(1)]))
    at = datetime.now(UTC)

    def due(conn: Any) -> list[jobs.FlowJob]:
        conn.execute(flow_jobs.insert().values(
            contact_id=contact_id, flow="drop", trigger="at", occurrence="", due_at=at,
            status="due", attempts=0, created_at=at))  # fmt: skip
        return jobs.claim(conn, at, LEASE, 10)

    [job] = await store.db.run(due)
    ctx = await store.load_turn(contact_id)
    reply = OutboundSms(number(1), "Out now: https://store.example.com/glasshouse?x=1")
    record = TurnRecord(contact_id, ctx.conversation_id, None, replies=[reply])
    short = jobs.ShortLinks("https://nova.example/l/", {"source": "sms"})
    [oid] = await store.db.run(jobs.finish, job, record, at, short)

    def written(conn: Any) -> tuple[str, Any]:
        body = conn.execute(sa.select(messages.c.body).where(messages.c.id == oid)).scalar_one()
        return body, conn.execute(sa.select(links)).one()

    body, link = await store.db.run(written)
    assert body == f"Out now: https://nova.example/l/{link.code}"
    assert (link.contact_id, link.message_id, link.flow) == (contact_id, oid, "drop")
    assert link.url.startswith("https://store.example.com/glasshouse?x=1&utm_source=sms")


async def _set_thread(line: SimpleNamespace, contact_id: int, status: str) -> None:
    """An agent takes the fan's thread (`open`), or hands the fan back to the bot (`bot`)."""

    def go(conn: Any) -> None:
        conv = inbox_store.conversation_of_contact(conn, contact_id)
        assert conv is not None
        inbox_store.update_conversation(conn, conv, status=status)

    await line.store.db.run(go)


async def test_a_job_due_while_an_agent_owns_the_thread_waits_for_the_hand_back(
    line: SimpleNamespace,
) -> None:
    (cid,) = await fans(line, 1, profiles=[{"timezone": _zone_at_local_hour(12)}])
    await _set_thread(line, cid, "open")
    timed, at = TimedFlows(line.pipeline), datetime.now(UTC) + timedelta(seconds=1)
    assert await timed.run_pass(at) == []
    (job,) = await job_rows(line)
    assert (job.status, job.reason, job.attempts) == ("due", "person_in_thread", 0)
    assert await timed.run_pass(at + timedelta(minutes=30)) == []  # still with the agent
    assert await texts(line, cid) == []
    await _set_thread(line, cid, "bot")  # handed back
    (outcome,) = await timed.run_pass(at + timedelta(minutes=36))
    assert outcome.contact_id == cid
    assert [r.body.startswith(WELCOME_1) for r in await texts(line, cid)] == [True]
    (job,) = await job_rows(line)
    assert (job.status, job.attempts) == ("done", 1)


async def test_a_job_still_held_a_day_past_due_is_skipped(line: SimpleNamespace) -> None:
    (cid,) = await fans(line, 1)
    await _set_thread(line, cid, "snoozed")
    timed, at = TimedFlows(line.pipeline), datetime.now(UTC) + timedelta(seconds=1)
    await timed.run_pass(at)
    await timed.run_pass(at + jobs.LATE + timedelta(minutes=10))
    (job,) = await job_rows(line)
    assert (job.status, job.reason) == ("skipped", "person_in_thread")
    assert await texts(line, cid) == []


async def test_a_queued_timed_text_is_not_sent_while_an_agent_owns_the_thread(
    line: SimpleNamespace,
) -> None:
    (cid,) = await fans(line, 1, profiles=[{"timezone": _zone_at_local_hour(12)}])
    await TimedFlows(line.pipeline).run_pass(datetime.now(UTC) + timedelta(seconds=1))
    await _set_thread(line, cid, "open")  # after the text was queued, before it went
    assert await line.store.claim_outbox(50) == []
    (row,) = await texts(line, cid)
    assert row.status == "queued" and jobs._aware(row.not_before) > datetime.now(UTC)
    await _set_thread(line, cid, "bot")

    def due_now(conn: Any) -> None:  # the hold's recheck time come
        conn.execute(messages.update().where(messages.c.contact_id == cid).values(not_before=None))

    await line.store.db.run(due_now)
    assert [i.kind for i in await line.store.claim_outbox(50)] == ["timed"]
