"""A worker that runs only the `retrain` job under its lease, for the kill -9 test.

    python tests/teach/retrain_worker.py DATABASE_URL PROJECT PIPELINE TTL_S [PIDFILE]

With PIDFILE its training child is `gated_child.py`, which records its pid there and then
never trains: it waits, as the real child does, for its parent to go away.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot import leases  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.teach.teacher import LEASE, Teacher  # noqa: E402


async def main(url: str, project: str, pipeline: str, ttl_s: float, pidfile: str | None) -> None:
    db = Database(url)
    holder = leases.holder_id()
    teacher = Teacher(Path(project), pipeline=pipeline, db=db, holder=holder, lease_ttl_s=ttl_s)
    if pidfile:
        teacher.command = [sys.executable, str(Path(__file__).with_name("gated_child.py")), pidfile]
    print(f"started {holder}", flush=True)
    await leases.Singleton(db, LEASE, teacher.run, holder=holder, ttl_s=ttl_s).run(asyncio.Event())


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], float(args[3]), args[4] if len(args) > 4 else None))
