"""SQLite's group commit: the jobs waiting for the writer thread share one transaction, and
each caller still gets its own result or its own error."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.storage.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/g.db")
    database.run_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
    yield database
    database.close()


def _insert(conn: sa.Connection, k: int) -> int:
    conn.exec_driver_sql("INSERT INTO t (k) VALUES (?)", (k,))
    return k * 10


async def _many(db: Database, ks: range) -> list[int]:
    return await asyncio.gather(*(db.run(_insert, k) for k in ks))


def test_each_caller_of_a_batch_gets_its_own_result_from_two_event_loops(db: Database) -> None:
    gate = threading.Event()
    db.run_sync(lambda c: None)
    db._writer.submit(lambda c: gate.wait(10), (), *_sink())  # type: ignore[union-attr]
    results: dict[str, list[int]] = {}

    def in_thread(name: str, ks: range) -> None:
        results[name] = asyncio.run(_many(db, ks))

    threads = [threading.Thread(target=in_thread, args=("a", range(0, 50))),
               threading.Thread(target=in_thread, args=("b", range(50, 100)))]  # fmt: skip
    for t in threads:
        t.start()
    gate.set()  # the writer frees up with jobs of both loops waiting: they form batches
    for t in threads:
        t.join(30)
    assert results == {"a": [k * 10 for k in range(50)], "b": [k * 10 for k in range(50, 100)]}
    assert db.run_sync(lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 100


def test_a_failing_job_fails_alone(db: Database) -> None:
    async def scenario() -> list[object]:
        jobs = [db.run(_insert, k) for k in (1, 2, 1, 3)]  # the second 1 breaks the key
        return await asyncio.gather(*jobs, return_exceptions=True)

    out = asyncio.run(scenario())
    assert out[0] == 10 and out[1] == 20 and out[3] == 30
    assert isinstance(out[2], Exception)
    assert db.run_sync(lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 3


def _sink() -> tuple[object, object]:
    """A loop and future for a job whose result nobody awaits (it only holds the writer)."""

    class Loop:
        def call_soon_threadsafe(self, *args: object) -> None:
            pass

    return Loop(), None
