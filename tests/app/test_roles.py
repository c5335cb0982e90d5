"""Roles and singleton jobs: one holder of each lease at a time, a dead holder taken over."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import leases, ops, roles
from bot.errors import ConfigError
from bot.storage import Store
from bot.storage.db import Database, scratch_schema
from tests.conftest import PG_URL

from .stack import INLINE_BUDGET_S, OUR_NUMBER, fan, running_stack

HERE = Path(__file__).resolve().parent


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    Store.open(database_url, hash_key=b"k").close()  # the schema, migrations included
    d = Database(database_url)
    try:
        yield d
    finally:
        d.close()


def test_one_holder_at_a_time_until_it_releases_or_lapses(db: Database) -> None:
    assert db.run_sync(leases.acquire, "job", "a", 60)
    assert not db.run_sync(leases.acquire, "job", "b", 60)  # a holds it
    assert db.run_sync(leases.acquire, "job", "a", 60)  # a renews
    db.run_sync(leases.release, "job", "b")  # only the holder can release
    assert not db.run_sync(leases.acquire, "job", "b", 60)
    db.run_sync(leases.release, "job", "a")
    assert db.run_sync(leases.acquire, "job", "b", 60)
    assert db.run_sync(leases.acquire, "other", "a", 60)  # each job has its own lease
    # a holder that stops renewing: its lease lapses (a TTL already past) and b takes it
    assert db.run_sync(leases.acquire, "lapsing", "a", -1)
    assert db.run_sync(leases.acquire, "lapsing", "b", 60)
    held = db.run_sync(leases.holders)
    assert held["job"][0] == "b" and held["lapsing"][0] == "b" and held["other"][0] == "a"


async def test_a_singleton_runs_in_one_process_and_a_standby_takes_over(db: Database) -> None:
    running: list[str] = []
    peak = 0

    def job(me: str):  # noqa: ANN202
        async def run(stop: asyncio.Event) -> None:
            nonlocal peak
            running.append(me)
            peak = max(peak, len(running))
            await stop.wait()
            running.remove(me)

        return run

    stops = {name: asyncio.Event() for name in ("a", "b")}
    ones = {n: leases.Singleton(db, "job", job(n), holder=n, ttl_s=1.0) for n in stops}
    tasks = {n: asyncio.create_task(ones[n].run(stops[n])) for n in stops}
    first = await _until(lambda: running[0] if running else None)
    other = "b" if first == "a" else "a"
    stops[first].set()  # a clean stop (SIGTERM): the job ends, the lease is released
    await tasks[first]
    assert await _until(lambda: running == [other])
    assert ones[other].held and not ones[first].held
    stops[other].set()
    await tasks[other]
    assert peak == 1 and running == []


async def test_a_job_stops_when_its_lease_is_taken_from_it(db: Database) -> None:
    stopped = asyncio.Event()

    async def job(stop: asyncio.Event) -> None:
        await stop.wait()
        stopped.set()

    one = leases.Singleton(db, "job", job, holder="a", ttl_s=0.6)
    done = asyncio.Event()
    task = asyncio.create_task(one.run(done))
    assert await _until(lambda: one.held)
    # another process took it (say the database clock jumped): the next renewal fails
    await db.run(lambda c: c.execute(sa.text("UPDATE leases SET holder = 'b', expires_at = "
                                             "expires_at + 3600")))  # fmt: skip
    await asyncio.wait_for(stopped.wait(), 60)  # a bound, not a speed claim
    assert await _until(lambda: not one.held)
    done.set()
    await task


def test_a_holder_killed_with_sigkill_is_taken_over(db: Database, database_url: str) -> None:
    db.run_sync(lambda c: c.execute(sa.text("CREATE TABLE lease_runs (pid INTEGER, at FLOAT)")))
    ttl = "2"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    script = str(HERE / "lease_process.py")
    a = subprocess.Popen([sys.executable, script, database_url, ttl], stdout=subprocess.PIPE,
                         text=True, env=env)  # fmt: skip
    b = None
    try:
        assert a.stdout is not None and a.stdout.readline().startswith("running")
        b = subprocess.Popen([sys.executable, script, database_url, ttl], stdout=subprocess.PIPE,
                             text=True, env=env)  # fmt: skip
        assert b.stdout is not None and b.stdout.readline().strip() == "standby"
        a.send_signal(signal.SIGKILL)  # no release, no goodbye: the lease must lapse
        a.wait(timeout=30)
        line = b.stdout.readline()  # blocks until b runs the job: within the TTL plus a poll
        assert line.strip() == f"running {b.pid}"
        # never both at once: b's job ran only after a's last run (the database's clock)
        count_b = sa.text("SELECT COUNT(*) FROM lease_runs WHERE pid = :p")
        deadline = time.monotonic() + 60  # a bound on waiting for b's first run, not a speed claim
        while not db.run_sync(lambda c: c.execute(count_b, {"p": b.pid}).scalar()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        runs = dict(db.run_sync(lambda c: c.execute(sa.text(
            "SELECT pid, MIN(at) FROM lease_runs GROUP BY pid")).all()))  # fmt: skip
        last_a = db.run_sync(lambda c: c.execute(sa.text(
            "SELECT MAX(at) FROM lease_runs WHERE pid = :p"), {"p": a.pid}).scalar())  # fmt: skip
        assert set(runs) == {a.pid, b.pid} and runs[b.pid] > last_a
        holder = db.run_sync(leases.holders)["test-job"][0]
        assert holder.split(":")[1] == str(b.pid)
    finally:
        for p in (a, b):
            if p is not None:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=30)
                if p.stdout is not None:
                    p.stdout.close()


def test_web_and_worker_apart_need_postgresql() -> None:
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        roles.check_role("worker", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="unknown role"):
        roles.check_role("cron", "postgresql://db/x")
    roles.check_role("all", "sqlite:///x.db")
    roles.check_role("web", "postgresql://db/x")


async def test_a_worker_serves_no_webhooks_and_holds_the_singletons(database_url: str) -> None:
    async for stack in running_stack(database_url, role="worker"):
        assert (await stack.text(fan(), "hi")).status_code == 404
        assert (await stack.http.get("/inbox")).status_code == 404
        assert (await stack.http.get("/healthz")).status_code == 200
        singles = {name for name, single in roles.jobs_for("worker") if single}
        ready = await _until_async(lambda s=stack, n=singles: _ready_with(s, n))
        assert ready["role"] == "worker" and set(ready["singletons"]) == singles
        assert {t.get_name() for t in stack.app.ctx.tasks} == {n for n, _ in roles.JOBS.items()}


async def test_a_web_process_answers_fans_and_runs_no_background_job(database_url: str) -> None:
    async for stack in running_stack(database_url, role="web", reply_budget_s=INLINE_BUDGET_S):
        answer = await stack.text(fan(), "hi")  # inline: a budget no loaded turn reaches
        assert answer.status_code == 200 and "<Message>" in answer.text
        assert [t.get_name() for t in stack.app.ctx.tasks] == ["content-reloader"]
        ready = (await stack.http.get("/readyz")).json()
        assert ready["role"] == "web" and ready["singletons"] == []
        assert OUR_NUMBER  # the webhook is signed for our number


async def test_readiness_says_when_migrations_are_pending(database_url: str) -> None:
    async for stack in running_stack(database_url):
        assert (await stack.http.get("/readyz")).status_code == 200
        await stack.store.db.run(
            lambda c: c.execute(
                sa.text("UPDATE alembic_version SET version_num = '0009_bot_answers'")
            )
        )
        ready = await stack.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "migrations pending"
        stack.app.ctx.draining = True  # what SIGTERM sets first
        await stack.store.db.run(
            lambda c: c.execute(sa.text("UPDATE alembic_version SET version_num = :v"),
                                {"v": ops.head_revision()})
        )  # fmt: skip
        assert (await stack.http.get("/readyz")).json()["status"] == "draining"
        stack.app.ctx.draining = False


async def _ready_with(stack: object, singles: set[str]) -> dict | None:
    body = (await stack.http.get("/readyz")).json()  # type: ignore[attr-defined]
    return body if set(body.get("singletons", [])) == singles else None


async def _until(check, bound_s: float = 60.0):  # noqa: ANN001, ANN202
    """Wait for a condition, up to a generous bound (not a speed claim)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met within the bound")


async def _until_async(check, bound_s: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met within the bound")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set")
async def test_a_worker_taking_the_unanswered_pass_leaves_recent_texts_to_the_web() -> None:
    """Beside web processes a text recorded a moment ago is a turn in flight (and a lower id
    may not be committed yet): even the pass at takeover answers only texts past the grace."""
    from bot.messages import InboundSms

    with scratch_schema(PG_URL or "", "t") as url:
        store = Store.open(url, hash_key=b"test")
        recent, old = fan(), fan()
        fresh = await store.record_inbound(
            InboundSms(f"SM{uuid.uuid4().hex}", recent, OUR_NUMBER, "hi")
        )
        left = await store.record_inbound(
            InboundSms(f"SM{uuid.uuid4().hex}", old, OUR_NUMBER, "hi")
        )
        await store.db.run(lambda c: c.execute(
            sa.text("UPDATE messages SET created_at = created_at - interval '10 minutes' "
                    "WHERE id = :i"), {"i": left.message_id}))  # fmt: skip
        store.close()
        async for stack in running_stack(url, role="worker"):
            # the pass goes oldest id first: had it taken the recent text, it would be answered
            await _until_async(lambda s=stack: _status(s, left.message_id, "processed"))
            assert await _status(stack, fresh.message_id, "received")


async def _status(stack: object, message_id: int, status: str) -> bool:
    row = await stack.store.db.run(  # type: ignore[attr-defined]
        lambda c: c.execute(
            sa.text("SELECT status FROM messages WHERE id = :i"), {"i": message_id}
        ).scalar()  # fmt: skip
    )
    return row == status
