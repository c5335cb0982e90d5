"""Singleton jobs: exactly one process at a time runs each, another takes over when it dies.

A lease is a row in `leases` (name, holder, expires_at on the database's clock). A process
runs a singleton job only while it holds the job's lease: it renews it every third of the TTL
and stops the job as soon as a renewal fails or could not be made in time, so the job has
stopped before the lease can lapse for others. A holder killed with `kill -9` stops renewing
and another process takes the lease once it expires (within `ttl_s` plus one poll); a holder
that stops cleanly (SIGTERM) releases it, and another takes over at its next poll.

The same rows work on SQLite and PostgreSQL (one statement, the database's own clock, so
machines whose clocks differ agree on expiry). The jobs themselves stay safe if two ever
overlap (conditional updates, `SKIP LOCKED`, per-fan locks): the lease spares the duplicate
work and gives each job one clear owner; it is not their only guard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from bot.storage.db import Database

log = logging.getLogger(__name__)

Job = Callable[[asyncio.Event], Awaitable[Any]]

_metadata = sa.MetaData()
leases = sa.Table(
    "leases",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(160), nullable=False),
    sa.Column("expires_at", sa.Float(), nullable=False),
    sa.Column("acquired_at", sa.Float(), nullable=False),
)


def holder_id() -> str:
    """This process, as other processes and operators see it: host, pid and a random tail."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now(conn: Any) -> str:
    if conn.dialect.name == "postgresql":
        return "extract(epoch from clock_timestamp())"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def acquire(conn: Any, name: str, holder: str, ttl_s: float) -> bool:
    """Take or renew the lease `name` for `ttl_s` seconds; whether `holder` now holds it."""
    now = _now(conn)
    # one conditional UPDATE: under concurrency the row's writers queue, and each re-checks
    # the condition on the row the previous one committed (PostgreSQL's READ COMMITTED)
    taken = conn.execute(
        sa.text(
            f"UPDATE leases SET expires_at = {now} + :ttl, acquired_at = CASE WHEN holder = :h "
            f"THEN acquired_at ELSE {now} END, holder = :h "
            f"WHERE name = :n AND (holder = :h OR expires_at < {now})"
        ),
        {"n": name, "h": holder, "ttl": ttl_s},
    ).rowcount
    if taken:
        return True
    inserted = conn.execute(
        sa.text(
            f"INSERT INTO leases (name, holder, expires_at, acquired_at) "
            f"VALUES (:n, :h, {now} + :ttl, {now}) ON CONFLICT (name) DO NOTHING"
        ),
        {"n": name, "h": holder, "ttl": ttl_s},
    ).rowcount
    return bool(inserted)


def release(conn: Any, name: str, holder: str) -> None:
    """Give the lease up now (a clean stop): the next poll of another process takes it."""
    conn.execute(
        sa.text("UPDATE leases SET expires_at = 0 WHERE name = :n AND holder = :h"),
        {"n": name, "h": holder},
    )


def holders(conn: Any) -> dict[str, tuple[str, float, float]]:
    """Every lease: name -> (holder, seconds since it was acquired, seconds until it expires)."""
    now = _now(conn)
    rows = conn.execute(
        sa.text(f"SELECT name, holder, {now} - acquired_at, expires_at - {now} FROM leases")
    ).all()
    return {r[0]: (r[1], float(r[2]), float(r[3])) for r in rows}


class Singleton:
    """Runs `job(stop)` only while this process holds the lease `name`."""

    def __init__(
        self, db: Database, name: str, job: Job, *, holder: str, ttl_s: float = 10.0
    ) -> None:
        self.db, self.name, self.job, self.holder = db, name, job, holder
        self.ttl_s = ttl_s
        self.renew_s = ttl_s / 3
        self.poll_s = min(2.0, ttl_s / 4)  # how often a standby tries to take the lease
        self.held = False

    async def _try(self, fn: Any, *args: Any) -> Any:
        try:
            return await self.db.run(fn, *args)
        except Exception:  # the database may be back next time; the caller decides
            log.warning("lease %s: the database did not answer", self.name, exc_info=True)
            return None

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, hold and run, until `stop`; then stop the job, wait for it, release."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            asked = loop.time()
            if not await self._try(acquire, self.name, self.holder, self.ttl_s):
                await _wait(stop, self.poll_s)
                continue
            self.held = True
            log.info("lease %s taken: running it here", self.name)
            job_stop = asyncio.Event()
            task = asyncio.create_task(self.job(job_stop), name=self.name)
            # renewals: the job must have stopped before the lease could lapse for others, so
            # it is stopped once a third of the TTL is left without a renewal
            valid_until = asked + self.ttl_s
            while not stop.is_set() and not task.done():
                await _wait(stop, self.renew_s, task)
                if stop.is_set() or task.done():
                    break
                asked = loop.time()
                renewed = await self._try(acquire, self.name, self.holder, self.ttl_s)
                if renewed:
                    valid_until = asked + self.ttl_s
                elif renewed is False or loop.time() > valid_until - self.ttl_s / 3:
                    log.warning("lease %s lost: stopping it here", self.name)
                    break
            job_stop.set()
            await asyncio.gather(task, return_exceptions=True)  # finish what is in flight
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("singleton job %s failed", self.name, exc_info=task.exception())
            self.held = False
            await self._try(release, self.name, self.holder)
            if not stop.is_set():
                await _wait(stop, self.poll_s)


async def _wait(stop: asyncio.Event, timeout: float, task: Any = None) -> None:
    waiters = {asyncio.ensure_future(stop.wait())}
    if task is not None:
        waiters.add(task)
    done, pending = await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
    for w in pending:
        if w is not task:
            w.cancel()
