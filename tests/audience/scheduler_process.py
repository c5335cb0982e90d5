"""A real scheduler process for the crash test: passes at one instant until nothing is due.

    python tests/audience/scheduler_process.py DATABASE_URL ISO_INSTANT

The test SIGKILLs it mid-pass; a later pass must finish its jobs without a second text.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.audience.scheduler import TimedFlows  # noqa: E402
from bot.storage import Store  # noqa: E402
from tests.audience.fans import close_pipeline, timed_pipeline  # noqa: E402


async def main(url: str, at: datetime) -> None:
    store = Store.open(url, hash_key=b"test-key")
    pipeline = timed_pipeline(store)  # the demo's content without its NLU model
    try:
        timed = TimedFlows(pipeline)
        while await timed.run_pass(at):
            pass
    finally:
        await close_pipeline(pipeline)
        store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
