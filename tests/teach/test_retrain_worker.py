"""Retraining is a worker's job: a teach's request survives the worker's `kill -9` mid-training
(the training child dies with it) and the next holder of the `retrain` lease trains it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.storage import Database, Store
from bot.teach import requests
from tests.teach.conftest import PIPELINE

HERE = Path(__file__).resolve().parent


def until(check: Callable[[], Any], timeout: float) -> Any:
    """Poll a condition another process makes true, up to `timeout` (a bound, not a pace)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def gone(pid: int) -> bool:
    """The process ended (an orphan's zombie counts: nothing runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def worker(url: str, project: Path, pidfile: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(HERE / "retrain_worker.py"), url, str(project), PIPELINE, "2"]
    return subprocess.Popen(args + ([str(pidfile)] if pidfile else []), stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def test_a_worker_killed_while_training_leaves_the_request_to_the_next_one(
    project: Path, database_url: str, tmp_path: Path
) -> None:
    Store.open(database_url, hash_key=b"k").close()
    db = Database(database_url)
    pidfile = tmp_path / "child.pid"
    a = worker(database_url, project, pidfile)
    b = None
    try:
        request = db.run_sync(requests.add, 7)  # what a teach records
        child = int(until(lambda: pidfile.is_file() and pidfile.read_text(), 120))
        row = db.run_sync(requests.get, request)
        assert row["status"] == "training" and row["holder"].split(":")[1] == str(a.pid)
        a.send_signal(signal.SIGKILL)  # mid-training: no release, no requeue
        a.wait(timeout=30)
        until(lambda: gone(child), 30)  # its training child went with it
        assert db.run_sync(requests.get, request)["status"] == "training"  # left as it was

        b = worker(database_url, project)  # takes the lapsed lease, trains for real
        done = until(lambda: (r := db.run_sync(requests.get, request))["status"] in
                     ("done", "failed") and r, 600)  # fmt: skip
        assert done["status"] == "done", done["error"]
        assert done["holder"].split(":")[1] == str(b.pid) and done["attempts"] == 2
        assert (project / "models" / done["model"] / "metadata.json").is_file()
        assert db.run_sync(requests.open_count) == 0
    finally:
        for p in (a, b):
            if p is not None:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=30)
                if p.stdout is not None:
                    p.stdout.close()
        db.close()


async def test_a_worker_stopping_mid_training_kills_its_child_and_leaves_the_request(
    tmp_path: Path, database_url: str
) -> None:
    """SIGTERM (or a lost lease) stops the job: the child is killed at once, the request goes
    back to pending for the next holder, and the lease is released."""
    import asyncio

    from bot import leases
    from bot.teach.teacher import LEASE, Teacher

    Store.open(database_url, hash_key=b"k").close()
    db = Database(database_url)
    pidfile = tmp_path / "child.pid"
    teacher = Teacher(tmp_path, db=db, lease_ttl_s=10)
    teacher.command = [sys.executable, str(HERE / "gated_child.py"), str(pidfile)]
    stop = asyncio.Event()
    job = asyncio.create_task(
        leases.Singleton(db, LEASE, teacher.run, holder=teacher.holder, ttl_s=10).run(stop)
    )
    try:
        request = await teacher.request()
        child = int(await asyncio.to_thread(
            until, lambda: pidfile.is_file() and pidfile.read_text(), 60))  # fmt: skip
        assert (await db.run(requests.get, request))["status"] == "training"
        stop.set()  # what SIGTERM does to the worker's jobs
        await asyncio.wait_for(job, 60)
        assert gone(child)
        row = await db.run(requests.get, request)
        assert row["status"] == "pending" and row["holder"] is None
        assert (await db.run(leases.holders))[LEASE][2] <= 0  # released, not left to lapse
    finally:
        stop.set()
        await asyncio.gather(job, return_exceptions=True)
        db.close()
