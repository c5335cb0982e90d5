"""A process that runs one singleton job under its lease, for the takeover test: kill -9 it.

    python tests/app/lease_process.py DATABASE_URL TTL_S

Prints "standby" after its first try found the lease taken, and "running <pid>" when its job
starts; the job records its pid in `lease_runs` every 0.1 s until stopped or killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402

from bot import leases  # noqa: E402
from bot.storage.db import Database  # noqa: E402


async def main(url: str, ttl_s: float) -> None:
    db = Database(url)
    holder = leases.holder_id()
    if not await db.run(leases.acquire, "test-job", holder, ttl_s):
        print("standby", flush=True)
    else:  # ours at once: give it back so the Singleton below takes it its own way
        await db.run(leases.release, "test-job", holder)

    async def job(stop: asyncio.Event) -> None:
        print(f"running {os.getpid()}", flush=True)
        while not stop.is_set():
            await db.run(lambda c: c.execute(sa.text(
                f"INSERT INTO lease_runs (pid, at) VALUES (:p, {leases._now(c)})"),
                {"p": os.getpid()}))  # fmt: skip
            await asyncio.sleep(0.1)  # the job's own pace, not a synchronisation

    await leases.Singleton(db, "test-job", job, holder=holder, ttl_s=ttl_s).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
